package digest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"publisher/internal/content"
	"publisher/internal/subscriber"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func day(n int) time.Time { return t0.AddDate(0, 0, n) }

func ids(pieces []content.Piece) []string {
	out := []string{}
	for _, p := range pieces {
		out = append(out, p.ID)
	}
	return out
}

func TestSelect(t *testing.T) {
	const lookback = 7 * 24 * time.Hour
	archive := []content.Piece{
		// Long in the archive when the publisher first ran (first seen = install day).
		{ID: "old-energy", Date: day(-60), FirstSeen: day(-30), Topics: []string{"energy"}},
		{ID: "recent-security", Date: day(-3), FirstSeen: day(-3), Topics: []string{"security"}},
		{ID: "undated-recent", FirstSeen: day(-2), Topics: []string{"Economy"}},
		{ID: "undated-old", FirstSeen: day(-20)},
		{ID: "draft", Date: day(-1), FirstSeen: day(-1), Draft: true},
		{ID: "never-seen", Date: day(-1)},
		{ID: "seen-in-future", Date: day(-1), FirstSeen: day(2)},
	}
	tests := []struct {
		name      string
		sub       Subscriber
		pieces    []content.Piece
		now       time.Time
		want      []string
		watermark time.Time
	}{
		{
			name: "new subscriber over an existing archive gets only the lookback window",
			sub:  Subscriber{JoinedAt: day(0)},
			now:  day(0), pieces: archive,
			want:      []string{"undated-recent", "recent-security"},
			watermark: day(0),
		},
		{
			name: "long-standing subscriber gets a back-dated piece first seen after the watermark",
			sub:  Subscriber{JoinedAt: day(-100), Watermark: day(-1)},
			now:  day(0),
			pieces: append(slices.Clone(archive),
				content.Piece{ID: "back-dated", Date: day(-30), FirstSeen: day(-1).Add(time.Minute)},
				// An old piece filed into the archive today predates the subscriber: history, not news.
				content.Piece{ID: "historical-import", Date: day(-400), FirstSeen: day(-1).Add(time.Minute)}),
			want:      []string{"back-dated"},
			watermark: day(0),
		},
		{
			name: "back-dated piece is announced once: not again after the watermark passed it",
			sub:  Subscriber{JoinedAt: day(-100), Watermark: day(0)},
			now:  day(1),
			pieces: append(slices.Clone(archive),
				content.Piece{ID: "back-dated", Date: day(-30), FirstSeen: day(-1).Add(time.Minute)}),
			want:      []string{},
			watermark: day(1),
		},
		{
			name: "new subscriber does not get a back-dated piece from before the lookback",
			sub:  Subscriber{JoinedAt: day(0)},
			now:  day(1),
			pieces: []content.Piece{
				{ID: "back-dated", Date: day(-400), FirstSeen: day(1)},
				{ID: "fresh", Date: day(1), FirstSeen: day(1)},
			},
			want:      []string{"fresh"},
			watermark: day(1),
		},
		{
			name:      "topics: any overlap, compared in slug form",
			sub:       Subscriber{JoinedAt: day(0), Topics: []string{"economy", "security"}},
			now:       day(0),
			pieces:    archive,
			want:      []string{"undated-recent", "recent-security"},
			watermark: day(0),
		},
		{
			name:      "topics with no overlap give nothing, but the watermark still advances",
			sub:       Subscriber{JoinedAt: day(0), Topics: []string{"foreign-policy"}, Watermark: day(-1)},
			now:       day(0),
			pieces:    archive,
			want:      []string{},
			watermark: day(0),
		},
		{
			name:      "a watermark later than now is kept",
			sub:       Subscriber{JoinedAt: day(-10), Watermark: day(5)},
			now:       day(0),
			pieces:    archive,
			want:      []string{},
			watermark: day(5),
		},
		{
			name: "newest first by published date, ties by ID",
			sub:  Subscriber{JoinedAt: day(-1)},
			now:  day(1),
			pieces: []content.Piece{
				{ID: "b", Date: day(0), FirstSeen: day(0)},
				{ID: "a", Date: day(0), FirstSeen: day(0)},
				{ID: "newest", FirstSeen: day(1)},
				{ID: "older", Date: day(-2), FirstSeen: day(0)},
			},
			want:      []string{"newest", "a", "b", "older"},
			watermark: day(1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, wm := Select(tt.sub, tt.pieces, lookback, tt.now)
			if got := ids(items); !slices.Equal(got, tt.want) {
				t.Errorf("items = %v, want %v", got, tt.want)
			}
			if !wm.Equal(tt.watermark) {
				t.Errorf("watermark = %v, want %v", wm, tt.watermark)
			}
		})
	}
}

// Running Select with the watermark it returns must never announce a piece twice,
// however the runs fall.
func TestSelectAnnouncesEachPieceOnce(t *testing.T) {
	pieces := []content.Piece{
		{ID: "p1", Date: day(0), FirstSeen: day(0)},
		{ID: "p2", Date: day(-50), FirstSeen: day(1).Add(3 * time.Hour)},
		{ID: "p3", FirstSeen: day(2).Add(5 * time.Hour)},
	}
	sub := Subscriber{JoinedAt: day(-200)}
	seen := map[string]int{}
	for now := day(-1); now.Before(day(4)); now = now.Add(7 * time.Hour) {
		var items []content.Piece
		items, sub.Watermark = Select(sub, pieces, 0, now)
		for _, p := range items {
			seen[p.ID]++
		}
	}
	for _, p := range pieces {
		if seen[p.ID] != 1 {
			t.Errorf("%s announced %d times, want once", p.ID, seen[p.ID])
		}
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func TestDue(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	daily := Policy{SendHour: 8, Location: berlin}
	weekly := Policy{SendHour: 8, SendDay: time.Monday, Location: berlin}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	tests := []struct {
		name   string
		policy Policy
		sub    Subscriber
		now    time.Time
		want   bool
	}{
		{"immediate is always due", daily, Subscriber{Cadence: subscriber.Immediate, LastDigestAt: at(2026, 3, 2, 8, 1)}, at(2026, 3, 2, 8, 2), true},
		{"daily before send_at, mailed yesterday", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 1, 8, 5)}, at(2026, 3, 2, 7, 59), false},
		{"daily at send_at", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 1, 8, 5)}, at(2026, 3, 2, 8, 0), true},
		{"daily first run after send_at", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 1, 8, 5)}, at(2026, 3, 2, 15, 0), true},
		{"daily already mailed today", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 2, 8, 5)}, at(2026, 3, 2, 23, 0), false},
		{"daily after missed days: due once", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 2, 20, 8, 5)}, at(2026, 3, 2, 6, 0), true},
		{"daily, never mailed, joined after today's send_at", daily, Subscriber{Cadence: subscriber.Daily, JoinedAt: at(2026, 3, 2, 9, 30)}, at(2026, 3, 2, 20, 0), false},
		{"daily, never mailed, next morning", daily, Subscriber{Cadence: subscriber.Daily, JoinedAt: at(2026, 3, 2, 9, 30)}, at(2026, 3, 3, 8, 0), true},
		{"daily, never mailed, joined before send_at", daily, Subscriber{Cadence: subscriber.Daily, JoinedAt: at(2026, 3, 2, 7, 0)}, at(2026, 3, 2, 8, 10), true},
		// 08:00 Berlin is 07:00Z in winter and 06:00Z in summer (clocks moved on 29 March).
		{"daily across spring DST: 06:30Z is 08:30 CEST", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 29, 8, 0)}, time.Date(2026, 3, 30, 6, 30, 0, 0, time.UTC), true},
		{"daily across spring DST: 05:59Z is 07:59 CEST", daily, Subscriber{Cadence: subscriber.Daily, LastDigestAt: at(2026, 3, 29, 8, 0)}, time.Date(2026, 3, 30, 5, 59, 0, 0, time.UTC), false},
		{"weekly on a Monday after send_at", weekly, Subscriber{Cadence: subscriber.Weekly, LastDigestAt: at(2026, 2, 23, 9, 0)}, at(2026, 3, 2, 8, 30), true},
		{"weekly on a Monday before send_at", weekly, Subscriber{Cadence: subscriber.Weekly, LastDigestAt: at(2026, 2, 23, 9, 0)}, at(2026, 3, 2, 7, 30), false},
		{"weekly midweek, already mailed Monday", weekly, Subscriber{Cadence: subscriber.Weekly, LastDigestAt: at(2026, 3, 2, 8, 1)}, at(2026, 3, 5, 12, 0), false},
		{"weekly midweek, Monday's run missed", weekly, Subscriber{Cadence: subscriber.Weekly, LastDigestAt: at(2026, 2, 23, 8, 1)}, at(2026, 3, 5, 12, 0), true},
		{"weekly, never mailed, joined Tuesday", weekly, Subscriber{Cadence: subscriber.Weekly, JoinedAt: at(2026, 3, 3, 10, 0)}, at(2026, 3, 8, 23, 0), false},
		{"unknown cadence is treated as immediate", daily, Subscriber{Cadence: "hourly", LastDigestAt: at(2026, 3, 2, 8, 1)}, at(2026, 3, 2, 8, 2), true},
		{"nil location is UTC", Policy{SendHour: 8}, Subscriber{Cadence: subscriber.Daily, LastDigestAt: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Due(tt.sub, tt.now); got != tt.want {
				t.Errorf("Due = %v, want %v", got, tt.want)
			}
		})
	}
}

// Simulated runs every 10 minutes across both DST changes of 2026, in zones that
// normalise the missing hour in opposite directions: a daily subscriber is due
// exactly once per local day and never before send_at; a weekly one once per week.
func TestDueSimulatedAcrossDST(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York"} {
		loc := mustLoad(t, zone)
		for _, clock := range [][2]int{{8, 0}, {2, 30}, {1, 30}, {0, 0}} {
			for _, window := range []time.Time{
				time.Date(2026, 3, 1, 0, 0, 0, 0, loc),
				time.Date(2026, 10, 20, 0, 0, 0, 0, loc),
			} {
				policy := Policy{SendHour: clock[0], SendMinute: clock[1], SendDay: time.Sunday, Location: loc}
				dailySub := Subscriber{Cadence: subscriber.Daily, JoinedAt: window.Add(-time.Hour)}
				weeklySub := Subscriber{Cadence: subscriber.Weekly, JoinedAt: window.Add(-time.Hour)}
				perDay := map[string]int{}
				weeklySends := 0
				end := window.AddDate(0, 0, 28)
				for now := window; now.Before(end); now = now.Add(10 * time.Minute) {
					if policy.Due(dailySub, now) {
						local := now.In(loc)
						perDay[local.Format("2006-01-02")]++
						dailySub.LastDigestAt = now
					}
					if policy.Due(weeklySub, now) {
						if wd := now.In(loc).Weekday(); wd != time.Sunday && !(wd == time.Monday && now.In(loc).Hour() < 4) {
							t.Errorf("%s %02d:%02d: weekly due on %s", zone, clock[0], clock[1], now.In(loc))
						}
						weeklySends++
						weeklySub.LastDigestAt = now
					}
				}
				for d := window; d.Before(end); d = d.AddDate(0, 0, 1) {
					key := d.Format("2006-01-02")
					if perDay[key] != 1 {
						t.Errorf("%s send_at %02d:%02d: %s had %d daily digests, want 1", zone, clock[0], clock[1], key, perDay[key])
					}
				}
				if weeklySends != 4 {
					t.Errorf("%s send_at %02d:%02d from %s: %d weekly digests in 4 weeks, want 4", zone, clock[0], clock[1], window.Format("2006-01-02"), weeklySends)
				}
			}
		}
	}
}

func TestParseClock(t *testing.T) {
	h, m, err := ParseClock("07:45")
	if err != nil || h != 7 || m != 45 {
		t.Errorf("ParseClock(07:45) = %d, %d, %v", h, m, err)
	}
	for _, bad := range []string{"7.45", "25:00", "", "07:45:00"} {
		if _, _, err := ParseClock(bad); err == nil {
			t.Errorf("ParseClock(%q) accepted", bad)
		}
	}
}

func TestSortNewestFirst(t *testing.T) {
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var pieces []content.Piece
	for i := range 50 {
		// Dates repeat, so the order also rests on the ids.
		pieces = append(pieces, content.Piece{ID: fmt.Sprintf("p%02d", (i*17)%50), Date: day.AddDate(0, 0, (i*7)%9)})
	}
	want := slices.Clone(pieces)
	slices.SortStableFunc(want, func(a, b content.Piece) int {
		if c := b.Published().Compare(a.Published()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	SortNewestFirst(pieces)
	for i := range want {
		if pieces[i].ID != want[i].ID {
			t.Fatalf("at %d: %s, want %s", i, pieces[i].ID, want[i].ID)
		}
	}
	SortNewestFirst(pieces) // sorted already: left as it is
	for i := range want {
		if pieces[i].ID != want[i].ID {
			t.Fatalf("sorted twice, at %d: %s, want %s", i, pieces[i].ID, want[i].ID)
		}
	}
}
