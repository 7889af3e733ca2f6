// Package websub tells WebSub hubs that feeds changed, so readers subscribed
// through a hub hear of a new piece at once instead of at their next poll.
package websub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// PingHubs tells each WebSub hub that the topics (the feed URLs) changed:
// one form-encoded POST hub.mode=publish&hub.url=... per hub and topic, as hubs
// widely accept. A hub that fails does not stop the others; every failure is
// returned, joined, naming its hub and topic.
func PingHubs(ctx context.Context, client *http.Client, hubs []string, topicURLs []string) error {
	if client == nil {
		client = http.DefaultClient
	}
	var errs []error
	for _, hub := range hubs {
		for _, topic := range topicURLs {
			if err := pingHub(ctx, client, hub, topic); err != nil {
				errs = append(errs, fmt.Errorf("websub hub %s, topic %s: %w", hub, topic, err))
			}
		}
	}
	return errors.Join(errs...)
}

func pingHub(ctx context.Context, client *http.Client, hub, topic string) error {
	body := url.Values{"hub.mode": {"publish"}, "hub.url": {topic}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
