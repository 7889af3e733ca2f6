package feed

import (
	"fmt"
	"strings"
	"testing"

	"publisher/internal/content"
)

func TestTopicSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Energy Policy":        "energy-policy",
		"  EU / NATO  ":        "eu-nato",
		"Économie":             "economie",
		"Trade & Tariffs 2024": "trade-tariffs-2024",
	} {
		if got := TopicSlug(in); got != want {
			t.Errorf("TopicSlug(%q) = %q, want %q", in, got, want)
		}
	}
	if a, b := TopicSlug("!!!"), TopicSlug("???"); !strings.HasPrefix(a, "topic-") || a == b || a != TopicSlug("!!!") {
		t.Errorf("punctuation-only topics: %q %q: want distinct, stable names", a, b)
	}
}

func TestTopicsMergeSpellings(t *testing.T) {
	got := Topics([]content.Piece{
		{Topics: []string{"eu", "Energy"}},
		{Topics: []string{"EU", " "}},
		{Topics: []string{"Hidden"}, Draft: true},
	})
	if fmt.Sprint(got) != "[{Energy energy} {EU eu}]" {
		t.Errorf("Topics = %v", got)
	}
}

func TestTopicURLsAreEscaped(t *testing.T) {
	b, err := ParseBase("https://desk.example/a b")
	if err != nil {
		t.Fatal(err)
	}
	if got := Resolve(b, TopicDir("a b")+RSSName); got != "https://desk.example/a%20b/topics/a%20b/feed.xml" {
		t.Errorf("Resolve = %s", got)
	}
}
