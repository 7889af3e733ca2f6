// Package templates holds the HTML and text templates publisher renders with (and the
// digest stylesheet, digest.css, which is inlined into every digest). They are
// embedded in the binary; an operator may override any of them by putting a file of the
// same name in the folder named by templates.dir.
package templates

import (
	"embed"
	"errors"
	"io/fs"
	"os"
)

//go:embed *.tmpl *.css
var embedded embed.FS

// Embedded returns the templates built into the binary.
func Embedded() fs.FS { return embedded }

// FS returns the templates with overrideDir's files taking precedence over the
// embedded ones. An empty overrideDir gives the embedded set.
func FS(overrideDir string) fs.FS {
	if overrideDir == "" {
		return embedded
	}
	return overlay{top: os.DirFS(overrideDir), base: embedded}
}

// overlay serves a file from top when it exists there, else from base.
type overlay struct{ top, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.base.Open(name)
}

// ReadFile is fs.ReadFile, so an overridden template is read from the override folder.
func (o overlay) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(o.top, name)
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return fs.ReadFile(o.base, name)
}
