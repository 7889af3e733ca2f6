package content

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTeaser(t *testing.T) {
	sentence := func(n int) string { return strings.Repeat("word ", n/5-1) + "end. " }
	long := strings.TrimSpace(sentence(100) + sentence(100) + sentence(100) + sentence(100) + sentence(100))
	for _, tc := range []struct {
		name    string
		p       Piece
		want    string
		wantLen [2]int // rune bounds when want is empty
	}{
		{name: "summary wins", p: Piece{Summary: " The editor's words. ", Lede: long}, want: "The editor's words."},
		{name: "short lede whole", p: Piece{Lede: "A short  lede.\nOn two lines."}, want: "A short lede. On two lines."},
		{name: "cut at the sentence end nearest 300", p: Piece{Lede: long}, wantLen: [2]int{290, 310}},
		{name: "no sentence end: word cut with ellipsis", p: Piece{Lede: strings.Repeat("wordy ", 120)}, wantLen: [2]int{250, 300}},
		{name: "abbreviation is no sentence end", p: Piece{Lede: strings.Repeat("a ", 140) + "Dr. Smith said " + strings.Repeat("b ", 100)}, wantLen: [2]int{250, 300}},
	} {
		got := Teaser(&tc.p)
		if tc.want != "" {
			if got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
			continue
		}
		n := utf8.RuneCountInString(got)
		if n < tc.wantLen[0] || n > tc.wantLen[1] {
			t.Errorf("%s: %d characters: %q", tc.name, n, got)
		}
		if !strings.HasSuffix(got, ".") && !strings.HasSuffix(got, "…") {
			t.Errorf("%s: not cut at a sentence or marked: %q", tc.name, got)
		}
		if strings.HasSuffix(got, "Dr.") {
			t.Errorf("%s: cut after an abbreviation: %q", tc.name, got)
		}
	}
}

// teaserWhole is Teaser from all of the lede: the reference for the
// shortcut of reading only its start.
func teaserWhole(p *Piece) string {
	if s := strings.TrimSpace(p.Summary); s != "" {
		return s
	}
	return cutTeaser(collapse(p.Lede))
}

// Teaser reads only the start of a long lede; it gives what reading all of
// it gives, for ledes of every length around the cut, with closing quotes,
// abbreviations, odd spaces and long words where the cut falls.
func TestTeaserReadsTheStartOnly(t *testing.T) {
	words := []string{"word", "Next", "end.", "end.\"", "end.”)", "“Quoted", "Dr.", "U.S.", "J.", "why?", "yes!’", "(aside)", "12", "élan", "Łódź.", "naïve", "—", "x", strings.Repeat("long", 30), "a,", "b;"}
	spaces := []string{" ", " ", "  ", "\n", "\t", "\u00a0", "\u2003"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var b strings.Builder
		n := rng.IntN(700)
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteString(spaces[rng.IntN(len(spaces))])
		}
		p := Piece{Lede: b.String()}
		if got, want := Teaser(&p), teaserWhole(&p); got != want {
			t.Fatalf("case %d, lede %q:\n got %q\nwant %q", i, p.Lede, got, want)
		}
	}
}

func BenchmarkTeaser(b *testing.B) {
	p := Piece{Lede: strings.Repeat("Steady operators held despite the inquiry. ", 40)}
	for b.Loop() {
		Teaser(&p)
	}
}
