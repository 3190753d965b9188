package consortium

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A copy of a file with a hole and a page of zeros keeps its bytes and
// takes no more of the disk than its pages of data; diskUsage counts what
// the files take on disk, not their lengths.
func TestCopySparse(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	f, err := os.Create(filepath.Join(src, "db"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 4096)
	f.WriteAt(data, 0)
	f.WriteAt(make([]byte, 4096), 4096) // a page of zeros, written
	f.WriteAt(data, 1<<20)              // after a hole
	f.Truncate(4 << 20)                 // grown ahead, as bbolt does
	f.Close()
	if err := copySparse(src, dst); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(src, "db"))
	got, err := os.ReadFile(filepath.Join(dst, "db"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy differs (%d bytes, want %d): %v", len(got), len(want), err)
	}
	used, err := diskUsage(dst)
	if err != nil {
		t.Fatal(err)
	}
	if used > 3*4096 || used < 2*4096 {
		t.Fatalf("the copy takes %d bytes on disk for two pages of data (4 MiB long)", used)
	}
}
