package content

import (
	"strings"
	"unicode"
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
	lede := collapse(p.Lede)
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
