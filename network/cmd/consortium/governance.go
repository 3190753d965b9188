package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/inter-nmi/pki/network/internal/consortium"
	"github.com/inter-nmi/pki/network/pkg/governance"
	"github.com/inter-nmi/pki/network/pkg/topology"
)

// The membership workflow: a newcomer defines itself, a member proposes the
// update, the members' admins sign it and see who is still missing, one
// submits it, and the newcomer's nodes join (or a leaver's stop).

const governanceUsage = `membership and consenter changes:
  org define NMI.yaml                     the newcomer: crypto material and organisation definition
  orderer define -nmi N -port P -admin-port A -operations-port O
                                          an NMI's new orderer: enrolment and exported certificates
  update propose -as N -out FILE add-org -nmi N -definition org.json
  update propose -as N -out FILE remove-org -nmi N
  update propose -as N -out FILE add-orderer -nmi N
  update propose -as N -out FILE remove-orderer -nmi N [-id ID]
  update sign -as N FILE                  an NMI's admin signs the proposal
  update status [-via N] FILE             who has signed, which policies are met
  update submit -as N FILE                send it to the ordering service (refused unless met)
  org join N | org leave N                start a newcomer's nodes / stop a former member's
  orderer join N | orderer retire N       start an NMI's new consenter / stop a removed one`

func orgCommand(ctx context.Context, nw *consortium.Network, args []string, out io.Writer) (int, error) {
	if len(args) != 2 {
		return 2, errors.New("usage: org define NMI.yaml | org join NMI | org leave NMI")
	}
	switch args[0] {
	case "define":
		n, err := readNMI(args[1])
		if err != nil {
			return 2, err
		}
		file, err := nw.DefineNMI(ctx, n)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s (%s) defined. Send the consortium its organisation definition:\n  %s\n", n.Name, n.MSPID, file)
		fmt.Fprintf(out, "Its private keys stay in %s.\n", nw.CryptoDir(&n))
		return 0, nil
	case "join":
		if err := nw.JoinNMI(ctx, args[1]); err != nil {
			return 1, err
		}
		n, _ := nw.Topology.NMI(args[1])
		fmt.Fprintf(out, "%s joined: peer %s, registry %s\n", n.Name, n.PeerAddress(), consortium.RegistryURL(n))
		return 0, nil
	case "leave":
		if err := nw.LeaveNMI(ctx, args[1]); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s's nodes stopped; its meters stay on the ledger.\n", args[1])
		return 0, nil
	}
	return 2, fmt.Errorf("unknown org command %q", args[0])
}

// readNMI reads a newcomer's nodes: one entry of a topology's nmis list. Its
// orderer joins the consenter set by a separate update.
func readNMI(path string) (topology.NMI, error) {
	var n topology.NMI
	b, err := os.ReadFile(path)
	if err != nil {
		return n, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&n); err != nil {
		return n, fmt.Errorf("%s: %w", path, err)
	}
	if n.Orderer != nil {
		return n, fmt.Errorf("%s: an orderer joins the consenter set by an update of its own: leave it out here and use `orderer define` once the NMI is a member", path)
	}
	return n, nil
}

func ordererCommand(ctx context.Context, nw *consortium.Network, args []string, out io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("usage: orderer define ... | orderer join NMI | orderer retire NMI")
	}
	switch args[0] {
	case "define":
		fs := flag.NewFlagSet("orderer define", flag.ContinueOnError)
		name := fs.String("nmi", "", "the NMI whose orderer it is")
		var o topology.Orderer
		fs.IntVar(&o.Port, "port", 0, "its port for clients and the cluster")
		fs.IntVar(&o.AdminPort, "admin-port", 0, "its channel participation (osnadmin) port")
		fs.IntVar(&o.OperationsPort, "operations-port", 0, "its health and metrics port")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if *name == "" || fs.NArg() != 0 {
			return 2, errors.New("orderer define needs -nmi and the three ports, and nothing else")
		}
		c, err := nw.DefineOrderer(*name, o)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s's orderer defined at %s. A member can now propose: update propose add-orderer -nmi %s\n", *name, c.Address(), *name)
		return 0, nil
	case "join", "retire":
		if len(args) != 2 {
			return 2, fmt.Errorf("usage: orderer %s NMI", args[0])
		}
		var err error
		if args[0] == "join" {
			err = nw.JoinOrderer(ctx, args[1])
		} else {
			err = nw.RetireOrderer(ctx, args[1])
		}
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s's orderer: %s done\n", args[1], args[0])
		return 0, nil
	}
	return 2, fmt.Errorf("unknown orderer command %q", args[0])
}

func updateCommand(ctx context.Context, nw *consortium.Network, args []string, out io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("usage: update propose | sign | status | submit")
	}
	fs := flag.NewFlagSet("update "+args[0], flag.ContinueOnError)
	as := fs.String("as", "", "the NMI whose admin acts")
	switch args[0] {
	case "propose":
		outFile := fs.String("out", "", "where to write the proposal")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if *as == "" || *outFile == "" || fs.NArg() == 0 {
			return 2, errors.New("usage: update propose -as NMI -out FILE add-org | remove-org | add-orderer | remove-orderer [flags]")
		}
		p, code, err := propose(ctx, nw, *as, fs.Args())
		if err != nil {
			return code, err
		}
		admin, err := nw.Admin(*as)
		if err != nil {
			return 1, err
		}
		if err := p.Sign(admin); err != nil {
			return 1, err
		}
		if err := p.Save(*outFile); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s\nProposed and signed by %s: %s\n", p.Description, *as, *outFile)
		return 0, showStatus(ctx, nw, p, *as, out)
	case "sign":
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if *as == "" || fs.NArg() != 1 {
			return 2, errors.New("usage: update sign -as NMI FILE")
		}
		p, err := governance.Load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		admin, err := nw.Admin(*as)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "%s\n", p.Description)
		if err := p.Sign(admin); err != nil {
			return 1, err
		}
		if err := p.Save(fs.Arg(0)); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "Signed by %s's admin.\n", *as)
		return 0, showStatus(ctx, nw, p, *as, out)
	case "status":
		via := fs.String("via", "", "the NMI whose peer gives the channel configuration (default: the first member)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if fs.NArg() != 1 {
			return 2, errors.New("usage: update status [-via NMI] FILE")
		}
		p, err := governance.Load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		if *via == "" {
			*via = nw.Topology.NMIs[0].Name
		}
		fmt.Fprintf(out, "%s\n", p.Description)
		return 0, showStatus(ctx, nw, p, *via, out)
	case "submit":
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if *as == "" || fs.NArg() != 1 {
			return 2, errors.New("usage: update submit -as NMI FILE")
		}
		p, err := governance.Load(fs.Arg(0))
		if err != nil {
			return 1, err
		}
		cfg, err := nw.Config(ctx, *as)
		if err != nil {
			return 1, err
		}
		// The submitter signs as it submits: count it before judging.
		admin, err := nw.Admin(*as)
		if err != nil {
			return 1, err
		}
		judged := *p
		if err := judged.Sign(admin); err != nil && !errors.Is(err, governance.ErrAlreadySigned) {
			return 1, err
		}
		if s := judged.Status(cfg); !s.Met {
			return 1, fmt.Errorf("not submitted, the channel would refuse it:\n%s", s)
		}
		if err := nw.Submit(ctx, p, *as); err != nil {
			return 1, err
		}
		fmt.Fprintf(out, "Submitted by %s and committed: %s\n", *as, p.Description)
		return 0, nil
	}
	return 2, fmt.Errorf("unknown update command %q", args[0])
}

// propose computes an update from the channel's configuration as the
// proposer's peer has it.
func propose(ctx context.Context, nw *consortium.Network, as string, args []string) (*governance.Proposal, int, error) {
	fs := flag.NewFlagSet("propose "+args[0], flag.ContinueOnError)
	name := fs.String("nmi", "", "the NMI the update is about")
	definition := fs.String("definition", "", "add-org: the newcomer's organisation definition (configtxgen -printOrg JSON)")
	id := fs.Uint("id", 0, "remove-orderer: the consenter's ID, if its NMI runs more than one")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, 2, err
	}
	switch {
	case !slices.Contains([]string{"add-org", "remove-org", "add-orderer", "remove-orderer"}, args[0]):
		return nil, 2, fmt.Errorf("unknown update %q: add-org, remove-org, add-orderer or remove-orderer", args[0])
	case *name == "" || fs.NArg() != 0:
		return nil, 2, fmt.Errorf("propose %s needs -nmi and nothing else", args[0])
	case args[0] == "add-org" && *definition == "":
		return nil, 2, errors.New("propose add-org needs -definition org.json")
	}
	cfg, err := nw.Config(ctx, as)
	if err != nil {
		return nil, 1, err
	}
	channel := nw.Topology.Channel
	var p *governance.Proposal
	switch args[0] {
	case "add-org":
		def, err := governance.ReadOrgDefinition(*definition)
		if err != nil {
			return nil, 1, err
		}
		p, err = governance.AddOrg(cfg, channel, *name, def)
		if err != nil {
			return nil, 1, err
		}
	case "remove-org":
		p, err = governance.RemoveOrg(cfg, channel, *name)
	case "add-orderer":
		var c governance.Consenter
		if c, err = nw.Consenter(*name); err == nil {
			p, err = governance.AddConsenter(cfg, channel, *name, nil, c)
		}
	case "remove-orderer":
		consenter := uint32(*id)
		if consenter == 0 {
			consenter, err = nw.ConsenterID(ctx, *name, as)
		}
		if err == nil {
			p, err = governance.RemoveConsenter(cfg, channel, consenter)
		}
	}
	if err != nil {
		return nil, 1, err
	}
	return p, 0, nil
}

func showStatus(ctx context.Context, nw *consortium.Network, p *governance.Proposal, via string, out io.Writer) error {
	cfg, err := nw.Config(ctx, via)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, p.Status(cfg))
	return nil
}
