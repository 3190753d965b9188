package wan

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inter-nmi/pki/network/pkg/topology"
)

func TestLoadTheConsortiumsTable(t *testing.T) {
	table, err := Load(filepath.Join("..", "..", "latency.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(filepath.Join("..", "..", "topology-multihost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	links, err := Plan(topo, table, func(n *topology.NMI) string { return "pki-" + strings.ToLower(n.Name) }, "10.77.0.1", 19000)
	if err != nil {
		t.Fatal(err)
	}
	// Every NMI reaches the peer of each other NMI, and the orderer of each
	// other NMI that runs one.
	nmis, orderers := len(topo.NMIs), len(topo.Orderers())
	want := nmis*(nmis-1) + orderers*(nmis-1)
	if len(links) != want {
		t.Fatalf("%d links, want %d", len(links), want)
	}
	listens := map[string]bool{}
	for _, l := range links {
		if listens[l.Listen] {
			t.Errorf("two links listen on %s", l.Listen)
		}
		listens[l.Listen] = true
		if l.From == l.To || l.Namespace != "pki-"+strings.ToLower(l.From) {
			t.Errorf("link %+v", l)
		}
		rtt, _ := table.Between(l.From, l.To)
		if l.OneWay != rtt/2 {
			t.Errorf("%s -> %s one way %s, want half of %s", l.From, l.To, l.OneWay, rtt)
		}
	}
	if rtt, ok := table.Between("NMIJ", "INMETRO"); !ok || rtt != 280*time.Millisecond {
		t.Errorf("INMETRO-NMIJ either way: %s %v", rtt, ok)
	}
}

func TestTableRefusals(t *testing.T) {
	for name, body := range map[string]string{
		"same NMI twice":      "rtt:\n  - {between: [PTB, PTB], rtt: 10ms}\n",
		"no round trip":       "rtt:\n  - {between: [PTB, CMI], rtt: 0s}\n",
		"pair given twice":    "rtt:\n  - {between: [PTB, CMI], rtt: 10ms}\n  - {between: [CMI, PTB], rtt: 12ms}\n",
		"misspelt setting":    "rtts:\n  - {between: [PTB, CMI], rtt: 10ms}\n",
		"one NMI of the pair": "rtt:\n  - {between: [PTB], rtt: 10ms}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "latency.yaml")
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	topo, err := topology.Load(filepath.Join("..", "..", "topology-multihost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	partial := &Table{RTT: []Pair{{Between: [2]string{"PTB", "CMI"}, RTT: 15 * time.Millisecond}}}
	if _, err := Plan(topo, partial, func(*topology.NMI) string { return "" }, "10.77.0.1", 19000); err == nil ||
		!strings.Contains(err.Error(), "no round trip between PTB and INMETRO") {
		t.Fatalf("a table without every pair: %v", err)
	}
}

// A link's proxy passes what is sent through it both ways, each way at
// least the link's one-way delay later.
func TestServeDelaysBothWays(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := free.Addr().String()
	free.Close()
	link := Link{From: "A", To: "B", Target: echo.Addr().String(), Listen: listen, OneWay: 60 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, []Link{link}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := AwaitListening(wait, []Link{link}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, msg := range []string{"first\n", "second\n"} {
		sent := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
		if rtt := time.Since(sent); rtt < 2*link.OneWay {
			t.Errorf("round trip %s through the link, shorter than twice its one-way delay %s", rtt, link.OneWay)
		}
	}
}
