package content

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxDerivedTitle is the longest title cut from a lede, in characters, ellipsis included.
const maxDerivedTitle = 100

// Slugify lower-cases s and keeps only a-z, 0-9 and single hyphens; accented
// letters lose their accents ("Čierna Hora" -> "cierna-hora"), other characters
// become separators.
func Slugify(s string) string {
	var b strings.Builder
	pendingHyphen := false
	for _, r := range norm.NFKD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // combining accent left by NFKD
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z':
			r += 'a' - 'A'
		default:
			pendingHyphen = b.Len() > 0
			continue
		}
		if pendingHyphen {
			b.WriteByte('-')
			pendingHyphen = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// validSlug reports whether s is already in the form slugify produces.
func validSlug(s string) bool {
	return s != "" && Slugify(s) == s
}

// abbreviations end with a period that does not end a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true,
	"gen": true, "col": true, "lt": true, "sen": true, "rep": true, "gov": true,
	"pres": true, "jr": true, "sr": true, "vs": true, "etc": true, "no": true,
	"e.g": true, "i.e": true, "approx": true, "est": true, "dept": true,
	"jan": true, "feb": true, "mar": true, "apr": true, "jun": true, "jul": true,
	"aug": true, "sep": true, "sept": true, "oct": true, "nov": true, "dec": true,
}

// firstSentence returns the lede up to its first sentence end (see
// sentenceEnd), or the whole lede when it has none.
func firstSentence(lede string) string {
	rs := []rune(lede)
	if end := sentenceEnd(rs, 0); end > 0 {
		return strings.TrimSpace(string(rs[:end]))
	}
	return strings.TrimSpace(lede)
}

// sentenceEnd returns the offset just past the first sentence end in rs at or
// after from, or -1: ". ", "? " or "! " (also with a closing quote between),
// not after an abbreviation such as "Dr." or "U.S." or a single initial, and
// only when the next word starts with a capital letter, a digit or a quote.
func sentenceEnd(rs []rune, from int) int {
	for i := from; i < len(rs); i++ {
		if rs[i] != '.' && rs[i] != '?' && rs[i] != '!' {
			continue
		}
		end := i + 1
		for end < len(rs) && strings.ContainsRune("\"'”’)", rs[end]) {
			end++
		}
		if end >= len(rs) || !unicode.IsSpace(rs[end]) {
			continue
		}
		next := end
		for next < len(rs) && unicode.IsSpace(rs[next]) {
			next++
		}
		if next < len(rs) && !(unicode.IsUpper(rs[next]) || unicode.IsDigit(rs[next]) || strings.ContainsRune("\"'“‘(", rs[next])) {
			continue
		}
		if rs[i] == '.' && isAbbreviation(rs[:i]) {
			continue
		}
		return end
	}
	return -1
}

// isAbbreviation looks at the word just before a period.
func isAbbreviation(before []rune) bool {
	start := len(before)
	for start > 0 && !unicode.IsSpace(before[start-1]) {
		start--
	}
	word := strings.TrimLeft(string(before[start:]), "\"'“‘(")
	if word == "" {
		return false
	}
	if utf8.RuneCountInString(word) == 1 {
		r, _ := utf8.DecodeRuneInString(word)
		return unicode.IsUpper(r) // an initial: "J. Smith"
	}
	if strings.Contains(word, ".") {
		return true // "U.S", "e.g"
	}
	return abbreviations[strings.ToLower(word)]
}

// deriveTitle cuts a title from the lede: its first sentence without a closing
// period, shortened at a word boundary to maxDerivedTitle characters with "…".
func deriveTitle(lede string) string {
	s := strings.Join(strings.Fields(firstSentence(lede)), " ")
	if strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "..") && len(s) > 1 {
		s = strings.TrimSuffix(s, ".")
	}
	rs := []rune(s)
	if len(rs) <= maxDerivedTitle {
		return s
	}
	cut := maxDerivedTitle - 1 // room for the ellipsis
	for i := cut; i > maxDerivedTitle/2; i-- {
		if unicode.IsSpace(rs[i]) {
			cut = i
			break
		}
	}
	return strings.TrimRight(string(rs[:cut]), " ,;:–—-") + "…"
}
