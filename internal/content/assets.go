package content

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/net/html"

	"publisher/internal/osfile"
)

// Asset is a file beside a piece that the piece links to (an image, a PDF),
// published beside the piece's page so that the link, made absolute against
// that page, finds it.
type Asset struct {
	// Src is the file, relative to the content folder, slash-separated.
	Src string
	// Dst is where it goes, relative to the piece's page folder: the link as
	// the piece wrote it ("chart.svg", "figures/map.png").
	Dst string
}

// assetTypes are the extensions of the files a piece may carry along: images,
// documents, data and media. Anything else a piece links to is left alone.
var assetTypes = map[string]bool{
	".svg": true, ".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".avif": true,
	".pdf": true, ".csv": true, ".xlsx": true, ".xls": true, ".ods": true, ".docx": true, ".odt": true,
	".pptx": true, ".odp": true, ".epub": true, ".zip": true,
	".mp3": true, ".m4a": true, ".ogg": true, ".mp4": true, ".webm": true,
}

// IsAsset reports whether a file of this name can be published beside a piece.
func IsAsset(name string) bool { return assetTypes[strings.ToLower(path.Ext(name))] }

// DefaultMaxAssetBytes is the size limit for one asset when Options.MaxAssetBytes is 0.
const DefaultMaxAssetBytes = 20 << 20

// localRefs lists the relative links and images of a parsed body that name a
// file of an asset type, before they are made absolute: the part of the URL
// that is a path, unescaped, as written ("chart.svg", "../img/x.png").
func localRefs(nodes []*html.Node) []string {
	var refs []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Namespace != "" {
					continue
				}
				switch {
				case contains(urlAttrs[n.DataAtom], a.Key):
					refs = appendRef(refs, a.Val)
				case a.Key == "srcset":
					for _, c := range strings.Split(a.Val, ",") {
						if f := strings.Fields(c); len(f) > 0 {
							refs = appendRef(refs, f[0])
						}
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	return refs
}

// appendRef adds raw to refs when it is a relative reference to a file of an
// asset type.
func appendRef(refs []string, raw string) []string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.Path == "" || strings.HasPrefix(u.Path, "/") {
		return refs
	}
	if !IsAsset(u.Path) {
		return refs
	}
	for _, r := range refs {
		if r == u.Path {
			return refs
		}
	}
	return append(refs, u.Path)
}

// svgDanger finds what would run in an SVG opened on the site's own origin.
var svgDanger = regexp.MustCompile(`(?i)<script|<foreignobject|\son[a-z]+\s*=|(javascript|vbscript)\s*:|<!entity`)

// checkAssets turns a piece's local references into its Assets, with a
// problem for each reference that would not resolve on the site: a file that
// is missing, outside the piece's folder, too large, or an SVG with scripts.
// refs are relative to the piece file's folder.
func checkAssets(dir, file string, refs []string, maxBytes int64) ([]Asset, []Problem) {
	var (
		assets   []Asset
		problems []Problem
	)
	warn := func(format string, args ...any) {
		problems = append(problems, Problem{File: file, Severity: Warning, Message: fmt.Sprintf(format, args...)})
	}
	folder := path.Dir(file)
	for _, ref := range refs {
		dst := path.Clean(ref)
		if dst == ".." || strings.HasPrefix(dst, "../") {
			warn("links to %s, outside the piece's folder: it is not published, and the link will not resolve (put the file beside the piece or in a folder below it)", ref)
			continue
		}
		src := path.Join(folder, dst)
		full := filepath.Join(dir, filepath.FromSlash(src))
		info, err := os.Stat(full)
		switch {
		case err != nil || !info.Mode().IsRegular():
			warn("links to %s, which is not in the content folder: the link will not resolve", ref)
			continue
		case info.Size() > maxBytes:
			warn("links to %s, which is too large to publish: %d bytes, the limit is %d (content.max_asset_bytes)", ref, info.Size(), maxBytes)
			continue
		}
		if strings.EqualFold(path.Ext(src), ".svg") {
			if bad, err := unsafeSVG(full); err != nil || bad {
				warn("links to %s, an SVG with scripts, event handlers or entities: it is not published", ref)
				continue
			}
		}
		assets = append(assets, Asset{Src: src, Dst: dst})
	}
	return assets, problems
}

// unsafeSVG reports whether the SVG file at full holds anything a browser
// would run: SVG is a document, and one opened from the site runs with the
// site's origin.
func unsafeSVG(full string) (bool, error) {
	f, err := osfile.Open(full, os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil && err != io.EOF {
		return false, err
	}
	return svgDanger.Match(b.Bytes()), nil
}
