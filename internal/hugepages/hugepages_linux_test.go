package hugepages

import (
	"bufio"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// vma is one mapping of /proc/self/smaps.
type vma struct {
	lo, hi        uintptr
	flags         []string
	anonHugePages int // kB
}

func mappings(t *testing.T) []vma {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var list []vma
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			lo, hi, _ := strings.Cut(fields[0], "-")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("smaps: %q", line)
			}
			list = append(list, vma{lo: uintptr(l), hi: uintptr(h)})
		case len(list) > 0 && fields[0] == "VmFlags:":
			list[len(list)-1].flags = fields[1:]
		case len(list) > 0 && fields[0] == "AnonHugePages:":
			list[len(list)-1].anonHugePages, _ = strconv.Atoi(fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return list
}

func containing(t *testing.T, addr uintptr) vma {
	t.Helper()
	for _, m := range mappings(t) {
		if m.lo <= addr && addr < m.hi {
			return m
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return vma{}
}

// The test runs in a process of its own, as the advice is given at the start
// of a command: in this one, earlier tests (or -count) leave free memory below
// the advised range, which the runtime would hand out first.
func TestForHeapGivesTheNextAllocationsHugePages(t *testing.T) {
	if os.Getenv("HUGEPAGES_TEST_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestForHeapGivesTheNextAllocationsHugePages$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "HUGEPAGES_TEST_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("in a process of its own: %v\n%s", err, out)
		}
		return
	}
	if !available() {
		// A kernel without transparent huge pages: nothing to ask for.
		if n := ForHeap(32 << 20); n != 0 {
			t.Fatalf("ForHeap advised %d bytes where the kernel's mode is never", n)
		}
		return
	}
	lo, hi, ok := advise(32 << 20)
	if !ok || hi-lo != 32<<20 {
		t.Fatalf("advise(32 MB) = %#x-%#x, %v: want 32 MB advised", lo, hi, ok)
	}
	for addr := lo; addr < hi; addr += hugePage {
		if m := containing(t, addr); !slices.Contains(m.flags, "hg") {
			t.Fatalf("mapping %#x-%#x holding %#x has flags %v, no hg (MADV_HUGEPAGE)", m.lo, m.hi, addr, m.flags)
		}
	}

	// What is allocated next lands in the advised range and, once touched,
	// is backed by huge pages.
	b := make([]byte, 6<<20)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if addr < lo || addr+uintptr(len(b)) > hi {
		t.Fatalf("a 6 MB object allocated next is at %#x, outside the advised %#x-%#x", addr, lo, hi)
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	if m := containing(t, addr); m.anonHugePages < 2048 {
		t.Errorf("6 MB touched in the advised range; mapping %#x-%#x has AnonHugePages %d kB, want at least one 2 MB page", m.lo, m.hi, m.anonHugePages)
	}
	// The flag covers the range only: the runtime's memory around it is as before.
	if m := containing(t, hi); slices.Contains(m.flags, "hg") {
		t.Errorf("mapping %#x-%#x after the advised range has hg too", m.lo, m.hi)
	}
}

func TestForHeapHonoursGODEBUGDisablethp(t *testing.T) {
	t.Setenv("GODEBUG", "madvdontneed=1,disablethp=1")
	if n := ForHeap(32 << 20); n != 0 {
		t.Fatalf("ForHeap with GODEBUG=disablethp=1 advised %d bytes", n)
	}
	if n := ForHeap(1 << 20); n != 0 {
		t.Fatalf("ForHeap(1 MB), less than two huge pages, advised %d bytes", n)
	}
}

func TestDisabledReadsGODEBUGAsTheRuntimeDoes(t *testing.T) {
	for in, want := range map[string]bool{
		"":                           false,
		"disablethp=1":               true,
		"disablethp=0":               false,
		"gctrace=1, disablethp=1":    true,
		"disablethp=1,disablethp=0":  false,
		"xdisablethp=1":              false,
		"madvdontneed=1,disablethp=": false,
	} {
		if got := disabled(in); got != want {
			t.Errorf("disabled(%q) = %v, want %v", in, got, want)
		}
	}
}
