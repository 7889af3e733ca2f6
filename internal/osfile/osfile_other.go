//go:build !unix

package osfile

import (
	"io/fs"
	"os"
)

// Open is os.OpenFile.
func Open(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

// Rename is os.Rename.
func Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
