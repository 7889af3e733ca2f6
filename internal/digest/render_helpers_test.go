package digest

import (
	"testing"
	"time"

	"publisher/internal/content"
	"publisher/templates"
)

var testSite = SiteInfo{Title: "The Eastern Desk", BaseURL: "https://desk.example.org/analysis", Description: "Weekly analysis of energy and security"}

var testLinks = Links{
	Unsubscribe: "https://desk.example.org/unsubscribe?t=tok-ana&x=1",
	Preferences: "https://desk.example.org/preferences?t=tok-ana",
}

func newTestRenderer(t testing.TB, opts ...Option) *Renderer {
	t.Helper()
	r, err := NewRenderer(templates.Embedded(), testSite, "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func samplePieces() []content.Piece {
	seen := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return []content.Piece{
		{
			ID: "grid-winter", Slug: "grid-winter", Hash: "h1",
			Title:   "Grid operators brace for a dry winter",
			Authors: []content.Author{{Name: "Ana Petrova", Role: "analyst"}, {Name: "Li Wen"}},
			Date:    time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), FirstSeen: seen,
			Summary: "Reservoir levels are low and import capacity is booked; the margin for a cold snap is thin.",
			Topics:  []string{"energy"},
			Source:  content.Source{Name: "Regional Monitor", URL: "https://monitor.example.com/"},
			HTML:    `<p>Reservoirs stand at a third of capacity.</p><p>See <a href="../data/">the data</a>.</p>`,
			Text:    "Reservoirs stand at a third of capacity.\n\nSee the data.",
			Lede:    "Reservoirs stand at a third of capacity.",
		},
		{
			ID: "border-talks", Slug: "border-talks", Hash: "h2",
			Title:        "Border talks resume after a quiet month",
			CanonicalURL: "https://partner.example.com/2026/border-talks",
			Authors:      []content.Author{{Name: "Sam Okafor", Role: "editor"}},
			Date:         time.Date(2026, 2, 27, 0, 0, 0, 0, time.UTC), FirstSeen: seen,
			Lede:   "Negotiators met again on Thursday, with little said in public about the agenda beyond a short joint statement.",
			Topics: []string{"security"},
			HTML:   "<p>Negotiators met again on Thursday, with little said in public about the agenda beyond a short joint statement.</p>",
			Text:   "Negotiators met again on Thursday, with little said in public about the agenda beyond a short joint statement.",
		},
	}
}
