package websub

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestPingHubs(t *testing.T) {
	var mu sync.Mutex
	var got []url.Values
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Method != http.MethodPost {
			http.Error(w, "bad request", 400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		v, _ := url.ParseQuery(string(b))
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "hub is down", http.StatusInternalServerError)
	}))
	defer bad.Close()

	topics := []string{"https://desk.example.org/feed.xml", "https://desk.example.org/atom.xml"}
	err := PingHubs(context.Background(), good.Client(), []string{bad.URL, good.URL, "http://127.0.0.1:1/"}, topics)
	if err == nil || !strings.Contains(err.Error(), bad.URL) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v, want both failing hubs named", err)
	}
	if strings.Contains(err.Error(), good.URL+",") {
		t.Fatalf("the working hub is reported as failing: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("good hub got %d pings, want 2", len(got))
	}
	for i, v := range got {
		if v.Get("hub.mode") != "publish" || v.Get("hub.url") != topics[i] {
			t.Fatalf("ping %d: %v", i, v)
		}
	}
	if err := PingHubs(context.Background(), nil, []string{good.URL}, topics[:1]); err != nil {
		t.Fatal(err)
	}
}
