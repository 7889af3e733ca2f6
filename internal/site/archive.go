package site

import (
	"fmt"
	"path"
	"strconv"
	"time"

	"publisher/internal/content"
)

// The archive is cut by month, then each month into parts of PageSize pieces,
// counted from the month's oldest piece. A new piece is the newest of its month
// almost always: it lands in the month's last part, or starts a new one, and
// every other part keeps its pieces. A back-dated piece changes the parts of
// its own month from its place on, and no other month.

// month is a calendar month in UTC.
type month struct{ year, month int }

func monthOf(t time.Time) month {
	u := t.UTC()
	return month{u.Year(), int(u.Month())}
}

func (m month) name() string {
	return time.Month(m.month).String() + " " + strconv.Itoa(m.year)
}

// dir is the month's folder under the archive's root: "2026/11/".
func (m month) dir() string { return fmt.Sprintf("%04d/%02d/", m.year, m.month) }

// archivePart is one page of a month.
type archivePart struct {
	month  month
	part   int   // 1-based
	pieces []int // indexes in the sorted pieces, oldest first
}

// dir is the part's folder under the archive's root: "2026/11/", "2026/11/2/".
func (p *archivePart) dir() string {
	if p.part == 1 {
		return p.month.dir()
	}
	return p.month.dir() + strconv.Itoa(p.part) + "/"
}

func (p *archivePart) title() string {
	if p.part == 1 {
		return p.month.name()
	}
	return fmt.Sprintf("%s, page %d", p.month.name(), p.part)
}

// archiveParts cuts pieces (indexes in sorted, newest first) into parts,
// oldest part first.
func archiveParts(sorted []content.Piece, pieces []int, pageSize int) []archivePart {
	var parts []archivePart
	for k := len(pieces) - 1; k >= 0; k-- {
		i := pieces[k]
		m := monthOf(sorted[i].Published())
		last := len(parts) - 1
		switch {
		case last < 0 || parts[last].month != m:
			parts = append(parts, archivePart{month: m, part: 1})
		case len(parts[last].pieces) == pageSize:
			parts = append(parts, archivePart{month: m, part: parts[last].part + 1})
		}
		last = len(parts) - 1
		parts[last].pieces = append(parts[last].pieces, i)
	}
	return parts
}

// yearGroup lists a year's months, newest first, for an archive's index.
type yearGroup struct {
	Year   int
	Months []monthLink
}

type monthLink struct {
	Name  string // "November"
	URL   string
	Count int
}

// yearsOf groups parts (oldest first) into years and months, newest first.
// root is the archive's absolute URL.
func yearsOf(parts []archivePart, root string) []yearGroup {
	var years []yearGroup
	for i := len(parts) - 1; i >= 0; i-- {
		p := &parts[i]
		if len(years) == 0 || years[len(years)-1].Year != p.month.year {
			years = append(years, yearGroup{Year: p.month.year})
		}
		y := &years[len(years)-1]
		name := time.Month(p.month.month).String()
		if n := len(y.Months); n > 0 && y.Months[n-1].Name == name {
			y.Months[n-1].Count += len(p.pieces)
			continue
		}
		y.Months = append(y.Months, monthLink{Name: name, URL: root + p.month.dir(), Count: len(p.pieces)})
	}
	return years
}

// navLink is a link to the page before or after in an archive's run of pages.
type navLink struct {
	URL   string
	Title string
}

// archivePath joins an archive root folder ("archive/", "topics/x/") and a part's folder.
func archivePath(root string, p *archivePart) string { return path.Join(root, p.dir()) + "/" }
