package content

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Lengths of a teaser cut from a lede, in characters.
const (
	teaserTarget = 300 // the cut aims here
	teaserMin    = 150 // a sentence end before this makes too short a teaser
	teaserMax    = 360 // a lede up to this long is shown whole
)

// Teaser is what lists, feeds and summary digests show of a piece: its
// summary when the editor gave one, else its lede cut at the sentence end
// nearest teaserTarget characters (between teaserMin and teaserMax), or, when
// no sentence ends there, at a word boundary with an ellipsis. Plain text.
func Teaser(p *Piece) string {
	if s := strings.TrimSpace(p.Summary); s != "" {
		return s
	}
	// The start of the lede: all of it when it is short enough to show whole.
	return cutTeaser(collapsePrefix(p.Lede, teaserMax+1))
}

// cutTeaser cuts a lede (collapsed, see collapse) as Teaser says.
func cutTeaser(lede string) string {
	rs := []rune(lede)
	if len(rs) <= teaserMax {
		return lede
	}
	best := -1
	for end := sentenceEnd(rs, 0); end > 0 && end <= teaserMax; end = sentenceEnd(rs, end) {
		if end >= teaserMin && (best < 0 || abs(end-teaserTarget) < abs(best-teaserTarget)) {
			best = end
		}
	}
	if best > 0 {
		return strings.TrimSpace(string(rs[:best]))
	}
	cut := teaserTarget - 1 // room for the ellipsis
	for i := cut; i > teaserMin; i-- {
		if unicode.IsSpace(rs[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRight(string(rs[:cut]), " ,;:–—-") + "…"
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// collapsePrefix is the start of collapse(s): whole words, single spaces, up
// to the word that brings it to n characters or more (all of it when shorter).
// Teaser looks no further than n-1: a sentence end counts only where its word
// ends (after any closing quotes), and the last word ends at n or later. A
// lede runs to thousands of characters; the teaser needs its first few hundred.
func collapsePrefix(s string, n int) string {
	var b strings.Builder
	b.Grow(min(len(s), 2*n))
	runes := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		if runes >= n {
			break
		}
		end := strings.IndexFunc(s[i:], unicode.IsSpace)
		if end < 0 {
			end = len(s) - i
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
			runes++
		}
		b.WriteString(s[i : i+end])
		runes += utf8.RuneCountInString(s[i : i+end])
		i += end
	}
	return b.String()
}
