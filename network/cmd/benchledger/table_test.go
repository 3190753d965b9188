package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/tables.good.txt")

// sampleStorage is the storage figures of a consortium of five NMIs, four
// with an orderer, whose stores grew by perReading bytes per accepted
// reading in each instance.
func sampleStorage(accepted int, perReading int64) Storage {
	nmis := []string{"PTB", "CMI", "INMETRO", "NMIJ", "NMIM"}
	after := Sizes{Bytes: map[instanceStore]int64{}, Instances: map[store][]string{}}
	grown := map[instanceStore]int64{}
	for i, s := range stores {
		instances := nmis
		switch s.Node {
		case nodeOrderer:
			instances = nmis[:4]
		case nodeExplorer:
			instances = []string{"explorer"}
		}
		after.Instances[s] = instances
		for _, n := range instances {
			k := instanceStore{s, n}
			grown[k] = perReading * int64(accepted) * int64(i+1) / 10
			after.Bytes[k] = grown[k] + 1<<20
		}
	}
	return storageGrowth(after, grown, accepted, "PTB")
}

func sampleMemory(scale int64) Memory {
	m := Memory{Bytes: map[string]int64{}, Processes: map[string]int{}}
	for kind, n := range map[string]int{"peer": 5, "orderer": 4, "chaincode": 5, "registry": 5, "explorer": 1} {
		m.Bytes[kind] = int64(n) * scale * 40 << 20
		m.Processes[kind] = n
		m.Total += m.Bytes[kind]
	}
	return m
}

func sampleReport() *Report {
	batches, _ := scenarioNamed("batches")
	half, _ := scenarioNamed("singles at half rate")
	half.Rate = 161.5
	return &Report{
		Via: "PTB",
		Scenarios: []Result{
			{scenario: batches, Accepted: 24000, PerSecond: 2627.4, P50ms: 1280, P95ms: 1800, Blocks: 31, BlockBytes: 128,
				CPU:     map[string]float64{"peer": 0.110, "chaincode": 0.257, "orderer": 0.059, "registry": 0.181, "explorer": 0.018},
				Storage: sampleStorage(24000, 10), Memory: sampleMemory(2)},
			{scenario: half, Accepted: 1536, PerSecond: 143, P50ms: 326, P95ms: 469, Blocks: 180, BlockBytes: 1253,
				CPU:     map[string]float64{"peer": 4.82, "chaincode": 0.97, "orderer": 3.38, "registry": 2.45, "explorer": 0.30},
				Storage: sampleStorage(1536, 60), Memory: sampleMemory(1)},
		},
		Long: &Long{Target: 200000, Round: batches, Rounds: 9, Meters: 4167, Checkpoints: []Checkpoint{
			{At: 100000, Accepted: 100032, Seconds: 44.1, PerSecond: 2268.3, Blocks: 130,
				CPU: map[string]float64{"peer": 0.1, "registry": 0.2}, Storage: sampleStorage(100032, 10), Memory: sampleMemory(3)},
			{At: 200000, Accepted: 200064, Rejected: 2, Failed: 1000, Seconds: 90.4, PerSecond: 2213.1, Blocks: 261,
				CPU: map[string]float64{"peer": 0.1, "registry": 0.2}, Storage: sampleStorage(200064, 9), Memory: sampleMemory(4)},
		}},
		Rebuilds: []Rebuild{
			{Index: "PTB's registry readings index", Blocks: 300, StartSeconds: 1.2, Seconds: 20.5, BlocksPerSecond: 14.6, SizeBefore: 80 << 20, SizeAfter: 64 << 20},
			{Index: "the explorer's index", Blocks: 300, StartSeconds: 0.8, Seconds: 41, BlocksPerSecond: 7.3, SizeBefore: 120 << 20, SizeAfter: 118 << 20},
		},
	}
}

// The tables, as make bench-ledger prints them: the scenarios' figures,
// their storage store by store and memory by kind of process, a long run's
// checkpoints and the index rebuilds.
func TestTables(t *testing.T) {
	r := sampleReport()
	var out bytes.Buffer
	writeScenarios(&out, r.Scenarios)
	writeLong(&out, r.Long)
	writeRebuilds(&out, r.Rebuilds)

	golden := filepath.Join("testdata", "tables.good.txt")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("tables differ from %s (go test -run TestTables -update to accept):\n%s", golden, out.String())
	}
}

// The JSON report carries every figure the tables show.
func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []struct {
			Name    string `json:"name"`
			Storage struct {
				Stores []StoreGrowth `json:"stores"`
				Nodes  []StoreGrowth `json:"nodes"`
				OneNMI Growth        `json:"oneNMI"`
				Total  Growth        `json:"total"`
			} `json:"storage"`
			Memory struct {
				Bytes map[string]int64 `json:"rssBytes"`
				Total int64            `json:"rssTotalBytes"`
			} `json:"memory"`
		} `json:"scenarios"`
		Long struct {
			Checkpoints []struct {
				At      int `json:"checkpoint"`
				Storage struct {
					Total Growth `json:"total"`
				} `json:"storage"`
			} `json:"checkpoints"`
		} `json:"long"`
		Rebuilds []Rebuild `json:"rebuilds"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	s := back.Scenarios[0]
	if s.Name != "batches" || len(s.Storage.Stores) != len(stores) || len(s.Storage.Nodes) != 4 || s.Storage.Total.All == 0 || s.Storage.OneNMI.All == 0 {
		t.Errorf("scenario storage %+v", s.Storage)
	}
	if s.Memory.Total == 0 || s.Memory.Bytes["peer"] == 0 {
		t.Errorf("scenario memory %+v", s.Memory)
	}
	if len(back.Long.Checkpoints) != 2 || back.Long.Checkpoints[1].At != 200000 || back.Long.Checkpoints[1].Storage.Total.All == 0 {
		t.Errorf("long run %+v", back.Long)
	}
	if len(back.Rebuilds) != 2 || back.Rebuilds[1].Seconds != 41 {
		t.Errorf("rebuilds %+v", back.Rebuilds)
	}
}
