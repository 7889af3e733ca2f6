// Package osfile opens and renames regular files with fewer system calls than
// package os, for the paths that handle thousands of small files in one run
// (a build reads every piece and writes every archive page).
//
// On Linux os.OpenFile offers every file to the runtime's poller, which
// regular files refuse; the attempt, with non-blocking mode set and cleared
// around it, costs five system calls per file, and os.Rename stats the target
// before renaming. Files opened here are not pollable, which regular files
// never are anyway: reads and writes block the goroutine's thread as they
// would through package os.
package osfile
