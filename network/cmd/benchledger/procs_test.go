package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// VmRSS is read from a process's status in bytes; a zombie's status has
// none, and a malformed line is no figure.
func TestVmRSS(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "status.*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/status.*.txt: %v", err)
	}
	want := map[string]int64{"status.peer.good.txt": 287412 * 1024}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rss, ok := vmRSS(b)
		good := strings.Contains(f, ".good.")
		if ok != good || (good && rss != want[filepath.Base(f)]) {
			t.Errorf("%s: %d %v, want %d %v", f, rss, ok, want[filepath.Base(f)], good)
		}
	}
	for _, bad := range []string{"VmRSS:\t12 MB\n", "VmRSS:\t-1 kB\n", "VmRSS:\tmany kB\n", "VmRSS:\n", "VmRSSX: 1 kB\n", ""} {
		if rss, ok := vmRSS([]byte(bad)); ok {
			t.Errorf("vmRSS(%q) = %d", bad, rss)
		}
	}
}

// Memory is summed by the kind a process's name ends with; a process gone
// is left out.
func TestMemoryByKind(t *testing.T) {
	self := os.Getpid()
	m := memoryByKind(map[string]int{"ptb-peer": self, "cmi-peer": self, "explorer": self, "ptb-registry": 1 << 30})
	if m.Processes["peer"] != 2 || m.Processes["explorer"] != 1 || m.Processes["registry"] != 0 {
		t.Fatalf("processes %v", m.Processes)
	}
	if m.Bytes["peer"] <= 0 || m.Total != m.Bytes["peer"]+m.Bytes["explorer"] {
		t.Fatalf("memory %+v", m)
	}
	for name, want := range map[string]string{"ptb-peer": "peer", "nmim-chaincode": "chaincode", "explorer": "explorer", "wan": "wan"} {
		if got := kindOf(name); got != want {
			t.Errorf("kindOf(%q) = %q, want %q", name, got, want)
		}
	}
}
