package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	all := make([]string, len(scenarios))
	for i, sc := range scenarios {
		all[i] = sc.Name
	}
	for _, c := range []struct {
		args        []string
		scenarios   []string
		long        int
		checkpoints []int
		rebuild     bool
		err         string
	}{
		{args: []string{}, scenarios: all},
		{args: []string{"-scenarios", "batches,singles 512"}, scenarios: []string{"batches", "singles 512"}},
		{args: []string{"-scenarios", "singles at 40/s"}, scenarios: []string{"singles at 40/s"}},
		{args: []string{"-long", "1000000", "-checkpoints", "100000,1000000", "-rebuild"}, long: 1000000, checkpoints: []int{100000, 1000000}, rebuild: true},
		{args: []string{"-long", "5000", "-checkpoints", "2000, 1000"}, long: 5000, checkpoints: []int{1000, 2000, 5000}},
		{args: []string{"-long", "5000", "-scenarios", "batches"}, scenarios: []string{"batches"}, long: 5000, checkpoints: []int{500, 5000}},
		{args: []string{"-long", "5000", "-checkpoints", "5000"}, long: 5000, checkpoints: []int{5000}},
		{args: []string{"-rebuild", "-scenarios", "singles"}, scenarios: []string{"singles"}, rebuild: true},
		{args: []string{"-scenarios", "nothing"}, err: `no scenario "nothing"`},
		{args: []string{"-long", "5000", "-checkpoints", "6000"}, err: "checkpoint"},
		{args: []string{"-long", "5000", "-checkpoints", "0"}, err: "checkpoint"},
		{args: []string{"-long", "5000", "-checkpoints", "many"}, err: "checkpoint"},
		{args: []string{"-checkpoints", "100"}, err: "needs -long"},
		{args: []string{"-long", "-3"}, err: "-long"},
	} {
		o, err := parseFlags(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if !slices.Equal(o.scenarios, c.scenarios) || o.long != c.long || !slices.Equal(o.checkpoints, c.checkpoints) || o.rebuild != c.rebuild {
			t.Errorf("%v: %+v", c.args, o)
		}
	}
}
