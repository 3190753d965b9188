package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// kindOf is the kind of a consortium process by its name (ptb-peer is a
// peer, explorer the explorer).
func kindOf(name string) string { return name[strings.LastIndexByte(name, '-')+1:] }

// cpuByKind sums user and system CPU-seconds of the processes by kind
// (peer, orderer, chaincode, registry, explorer).
func cpuByKind(procs map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range procs {
		out[kindOf(name)] += cpuSeconds(pid)
	}
	return out
}

// cpuSeconds reads utime+stime of a process (fields 14 and 15 of
// /proc/PID/stat, counted after the command name), in seconds.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// Memory is the resident memory of the consortium's processes at one
// moment, summed by kind of process.
type Memory struct {
	Bytes     map[string]int64 `json:"rssBytes"`
	Processes map[string]int   `json:"processes"`
	Total     int64            `json:"rssTotalBytes"`
}

// memoryByKind reads VmRSS of each process; one that has exited, or whose
// status cannot be read, is left out.
func memoryByKind(procs map[string]int) Memory {
	m := Memory{Bytes: map[string]int64{}, Processes: map[string]int{}}
	for name, pid := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		rss, ok := vmRSS(b)
		if !ok {
			continue
		}
		kind := kindOf(name)
		m.Bytes[kind] += rss
		m.Processes[kind]++
		m.Total += rss
	}
	return m
}

// vmRSS reads the resident set size, in bytes, from the text of
// /proc/PID/status ("VmRSS:     12345 kB"; absent for a zombie).
func vmRSS(status []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}
