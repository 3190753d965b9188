package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// table is text in columns: the first left-aligned, the others (figures)
// right-aligned.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	widths := make([]int, len(t.head))
	for _, row := range append([][]string{t.head}, t.rows...) {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	if t.title != "" {
		fmt.Fprintln(w, t.title)
	}
	for _, row := range append([][]string{t.head}, t.rows...) {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w)
}

// perReading formats bytes per reading: a decimal below 10.
func perReading(v float64) string {
	if v > -10 && v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// count formats a whole number with thousands separators.
func count[N int | uint64](n N) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// mib is bytes in MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// cpuKinds are the kinds of process of a set of CPU figures, sorted.
func cpuKinds(cpus ...map[string]float64) []string {
	kinds := map[string]bool{}
	for _, c := range cpus {
		for k := range c {
			kinds[k] = true
		}
	}
	return slices.Sorted(maps.Keys(kinds))
}

func sum(m map[string]float64) float64 {
	total := 0.0
	for _, v := range m {
		total += v
	}
	return total
}

// writeResults is the scenarios' main table: throughput, latency, blocks,
// CPU, and the totals of storage and memory.
func writeResults(w io.Writer, results []Result) {
	var cpus []map[string]float64
	for _, r := range results {
		cpus = append(cpus, r.CPU)
	}
	kinds := cpuKinds(cpus...)
	t := table{head: []string{"scenario", "accepted", "msmt/s", "p50 ms", "p95 ms", "blocks", "block B/msmt", "disk B/msmt", "RSS MiB", "CPU s/1000 total"}}
	t.head = append(t.head, kinds...)
	for _, r := range results {
		row := []string{r.title(), count(r.Accepted), fmt.Sprintf("%.1f", r.PerSecond), fmt.Sprintf("%.0f", r.P50ms), fmt.Sprintf("%.0f", r.P95ms),
			count(r.Blocks), fmt.Sprintf("%.0f", r.BlockBytes), perReading(r.Storage.Total.All), mib(r.Memory.Total), fmt.Sprintf("%.3f", sum(r.CPU))}
		for _, k := range kinds {
			row = append(row, fmt.Sprintf("%.3f", r.CPU[k]))
		}
		t.add(row...)
	}
	t.write(w)
}

// column is one scenario, or one checkpoint of a long run, in the tables
// of storage and memory.
type column struct {
	name    string
	storage Storage
	memory  Memory
}

func scenarioColumns(results []Result) []column {
	var cols []column
	for _, r := range results {
		cols = append(cols, column{name: r.title(), storage: r.Storage, memory: r.Memory})
	}
	return cols
}

func checkpointColumns(l *Long) []column {
	var cols []column
	for _, c := range l.Checkpoints {
		cols = append(cols, column{name: count(c.At) + " accepted", storage: c.Storage, memory: c.Memory})
	}
	return cols
}

// writeScenarios prints the scenarios' tables.
func writeScenarios(w io.Writer, results []Result) {
	writeResults(w, results)
	writeStorage(w, scenarioColumns(results))
	writeMemory(w, scenarioColumns(results))
}

// writeLong prints a long run's tables, a column per checkpoint so far.
func writeLong(w io.Writer, l *Long) {
	writeCheckpoints(w, l)
	writeStorage(w, checkpointColumns(l))
	writeMemory(w, checkpointColumns(l))
}

// writeStorage tables the bytes on disk per accepted reading, store by
// store: "one instance's average / all instances", then the machines of the
// NMI that served the load and the whole consortium.
func writeStorage(w io.Writer, cols []column) {
	if len(cols) == 0 {
		return
	}
	t := table{title: "bytes on disk per accepted reading (allocated, as du counts): one instance's average / all instances",
		head: []string{"store", "instances"}}
	for _, c := range cols {
		t.head = append(t.head, c.name)
	}
	cell := func(g Growth) string { return perReading(g.PerInstance) + " / " + perReading(g.All) }
	first := cols[0].storage
	for i, n := range first.Nodes {
		row := []string{n.Node, fmt.Sprint(n.Instances)}
		for _, c := range cols {
			row = append(row, cell(c.storage.Nodes[i].Growth))
		}
		t.add(row...)
		var parts []int
		for j, s := range first.Stores {
			if s.Node == n.Node {
				parts = append(parts, j)
			}
		}
		if len(parts) < 2 {
			continue
		}
		for _, j := range parts {
			row := []string{"  " + first.Stores[j].Store, fmt.Sprint(first.Stores[j].Instances)}
			for _, c := range cols {
				row = append(row, cell(c.storage.Stores[j].Growth))
			}
			t.add(row...)
		}
	}
	row := []string{fmt.Sprintf("one NMI's machines (%s)", first.OneNMIName), ""}
	for _, c := range cols {
		row = append(row, perReading(c.storage.OneNMI.All))
	}
	t.add(row...)
	row = []string{"consortium total", ""}
	for _, c := range cols {
		row = append(row, perReading(c.storage.Total.All))
	}
	t.add(row...)
	row = []string{"consortium total, MiB on disk at the end", ""}
	for _, c := range cols {
		row = append(row, mib(c.storage.Total.Size))
	}
	t.add(row...)
	t.write(w)
}

// writeMemory tables the resident memory at the end of each column, summed
// by kind of process.
func writeMemory(w io.Writer, cols []column) {
	if len(cols) == 0 {
		return
	}
	kinds := map[string]bool{}
	for _, c := range cols {
		for k := range c.memory.Bytes {
			kinds[k] = true
		}
	}
	t := table{title: "resident memory at the end (VmRSS), MiB summed by kind of process", head: []string{"process", "processes"}}
	for _, c := range cols {
		t.head = append(t.head, c.name)
	}
	last := cols[len(cols)-1].memory
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		row := []string{k, fmt.Sprint(last.Processes[k])}
		for _, c := range cols {
			row = append(row, mib(c.memory.Bytes[k]))
		}
		t.add(row...)
	}
	row := []string{"total", ""}
	for _, c := range cols {
		row = append(row, mib(c.memory.Total))
	}
	t.add(row...)
	t.write(w)
}

// writeCheckpoints is a long run's main table, one row per checkpoint.
func writeCheckpoints(w io.Writer, l *Long) {
	var cpus []map[string]float64
	for _, c := range l.Checkpoints {
		cpus = append(cpus, c.CPU)
	}
	kinds := cpuKinds(cpus...)
	t := table{title: fmt.Sprintf("long run: batches (%d×%d, %d meters × %d readings a round) until %s accepted; figures from its start",
		l.Round.Concurrency, l.Round.Batch, l.Round.Meters, l.Round.Slots, count(l.Target)),
		head: []string{"checkpoint", "accepted", "rejected", "failed", "msmt/s", "blocks", "disk B/msmt", "RSS MiB", "CPU s/1000 total"}}
	t.head = append(t.head, kinds...)
	for _, c := range l.Checkpoints {
		row := []string{count(c.At), count(c.Accepted), count(c.Rejected), count(c.Failed), fmt.Sprintf("%.1f", c.PerSecond),
			count(c.Blocks), perReading(c.Storage.Total.All), mib(c.Memory.Total), fmt.Sprintf("%.3f", sum(c.CPU))}
		for _, k := range kinds {
			row = append(row, fmt.Sprintf("%.3f", c.CPU[k]))
		}
		t.add(row...)
	}
	t.write(w)
}

// writeRebuilds tables the index rebuilds.
func writeRebuilds(w io.Writer, rebuilds []Rebuild) {
	if len(rebuilds) == 0 {
		return
	}
	t := table{title: "index rebuilt from block 0 (its file deleted, its node restarted)",
		head: []string{"index", "blocks", "to answer s", "caught up s", "blocks/s", "MiB before", "MiB after"}}
	for _, r := range rebuilds {
		t.add(r.Index, count(r.Blocks), fmt.Sprintf("%.1f", r.StartSeconds), fmt.Sprintf("%.1f", r.Seconds),
			fmt.Sprintf("%.0f", r.BlocksPerSecond), mib(r.SizeBefore), mib(r.SizeAfter))
	}
	t.write(w)
}
