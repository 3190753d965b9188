package governance

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// Status is how far a proposal is from being accepted by the channel whose
// configuration Status was given. It mirrors the orderer's check (Fabric's
// configtx validator): every element the update modifies needs its
// mod_policy, as the current configuration defines it, satisfied by the
// signatures. The orderer's verdict remains the authority.
type Status struct {
	// Requirements are the distinct policies the update needs, in order.
	Requirements []Requirement
	// Signatures are the checks of each collected signature, in order.
	Signatures []SignatureCheck
	// Problems are reasons the orderer would refuse the update whatever the
	// signatures: unreadable, computed against another configuration, or
	// changing nothing.
	Problems []string
	// Met: no problems, and every requirement met.
	Met bool
}

// Requirement is one policy the update must satisfy.
type Requirement struct {
	// Policy is its full path, e.g. /Channel/Application/Admins.
	Policy string
	// Label names it for people, e.g. "Application admins".
	Label string
	// Rule is the policy's rule, e.g. "MAJORITY Admins".
	Rule string
	// Elements are the modified configuration elements it governs.
	Elements []string
	// Members are the groups an implicit meta rule counts: the
	// organisations of the group, by name.
	Members []string
	// Signed are the members whose sub-policy the signatures satisfy (for an
	// organisation's Admins: one of its admins signed), in signing order;
	// for a signature policy, the MSP IDs of the signers it accepts.
	Signed []string
	// SignedMSPIDs are the MSP IDs of Signed organisations.
	SignedMSPIDs []string
	// Required is how many the rule needs.
	Required int
	Met      bool
}

// String reads like "Application admins: PTB, CMI signed — 2 of 3
// required: not yet".
func (r Requirement) String() string {
	who := "none"
	if len(r.Signed) > 0 {
		who = strings.Join(r.Signed, ", ")
	}
	verdict := "not yet"
	if r.Met {
		verdict = "met"
	}
	return fmt.Sprintf("%s: %s signed — %d of %d required: %s", r.Label, who, len(r.Signed), r.Required, verdict)
}

// String is a printable summary: one line per requirement, then the
// signatures that count for nothing or not as an admin's.
func (s Status) String() string {
	var b strings.Builder
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "Problem: %s\n", p)
	}
	for _, r := range s.Requirements {
		fmt.Fprintln(&b, r)
	}
	for _, c := range s.Signatures {
		switch {
		case c.Problem != "":
			fmt.Fprintf(&b, "Not counted: %s %s: %s\n", c.MSPID, c.Subject, c.Problem)
		case !c.Admin:
			fmt.Fprintf(&b, "Not an admin: %s %s\n", c.MSPID, c.Subject)
		}
	}
	if s.Met {
		b.WriteString("Ready to submit")
	} else {
		b.WriteString("Not ready to submit")
	}
	return b.String()
}

// Status reports, against the channel's current configuration, which
// policies the update needs, which organisations' admins have signed, and
// whether that suffices. Each signature is verified against its creator's
// certificate, which must chain to its MSP's root CA in cfg.
func (p *Proposal) Status(cfg *common.Config) Status {
	var s Status
	u, err := p.ConfigUpdate()
	if err != nil {
		s.Problems = append(s.Problems, err.Error())
		return s
	}
	checks, ids := checkSignatures(p.Update, p.Signatures, channelMSPs(cfg))
	s.Signatures = checks
	current := flatten(cfg.GetChannelGroup())
	read, write := flatten(u.GetReadSet()), flatten(u.GetWriteSet())
	for _, key := range slices.Sorted(maps.Keys(read)) {
		have, ok := current[key]
		switch {
		case !ok:
			s.Problems = append(s.Problems, fmt.Sprintf("the update reads %s, which the channel does not have", key))
		case have.version != read[key].version:
			s.Problems = append(s.Problems, fmt.Sprintf("the update was computed against %s at version %d, the channel has version %d: compute it again from the current configuration", key, read[key].version, have.version))
		}
	}
	byPolicy := map[string]*Requirement{}
	var order []string
	for _, key := range slices.Sorted(maps.Keys(write)) {
		w := write[key]
		if r, ok := read[key]; ok && r.version == w.version {
			continue
		}
		have, ok := current[key]
		if !ok {
			if w.version != 0 {
				s.Problems = append(s.Problems, fmt.Sprintf("the update creates %s at version %d; new elements start at 0", key, w.version))
			}
			continue // a new element is governed by its group's change
		}
		if w.version != have.version+1 {
			s.Problems = append(s.Problems, fmt.Sprintf("the update sets %s to version %d, the channel has version %d", key, w.version, have.version))
			continue
		}
		where, name := have.policyFor()
		path := "/" + strings.Join(append(append([]string{channelGroup}, where...), name), "/")
		r := byPolicy[path]
		if r == nil {
			req := evaluate(cfg.GetChannelGroup(), where, name, ids)
			req.Policy = path
			r = &req
			byPolicy[path] = r
			order = append(order, path)
		}
		r.Elements = append(r.Elements, key)
	}
	if len(order) == 0 && len(s.Problems) == 0 {
		s.Problems = append(s.Problems, "the update changes nothing")
	}
	s.Met = len(s.Problems) == 0
	for _, path := range order {
		s.Requirements = append(s.Requirements, *byPolicy[path])
		s.Met = s.Met && byPolicy[path].Met
	}
	return s
}

// element is a configuration element as the configtx validator maps it.
type element struct {
	// where is the path of groups below Channel: a group's own, or the
	// group holding a value or policy.
	where     []string
	group     bool
	version   uint64
	modPolicy string
}

// policyFor resolves the element's mod_policy as the configtx validator
// does: relative to the group (a group's own policies govern it), or
// absolute when it starts with '/'.
func (e element) policyFor() ([]string, string) {
	mp := e.modPolicy
	var parts []string
	if strings.HasPrefix(mp, "/") {
		parts = strings.Split(strings.TrimPrefix(mp, "/"), "/")
		if len(parts) > 0 && parts[0] == channelGroup {
			parts = parts[1:]
		}
	} else {
		parts = append(slices.Clone(e.where), strings.Split(mp, "/")...)
	}
	if len(parts) == 0 {
		return nil, ""
	}
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// flatten maps a config tree to its elements, keyed like
// "group /Channel/Application" or "value /Channel/Orderer/Orderers".
func flatten(root *common.ConfigGroup) map[string]element {
	out := map[string]element{}
	if root == nil {
		return out
	}
	var walk func(where []string, g *common.ConfigGroup)
	walk = func(where []string, g *common.ConfigGroup) {
		prefix := "/" + strings.Join(append([]string{channelGroup}, where...), "/")
		out["group "+prefix] = element{where: where, group: true, version: g.GetVersion(), modPolicy: g.GetModPolicy()}
		for k, v := range g.GetValues() {
			out["value "+prefix+"/"+k] = element{where: where, version: v.GetVersion(), modPolicy: v.GetModPolicy()}
		}
		for k, p := range g.GetPolicies() {
			out["policy "+prefix+"/"+k] = element{where: where, version: p.GetVersion(), modPolicy: p.GetModPolicy()}
		}
		for k, sub := range g.GetGroups() {
			walk(append(slices.Clip(where), k), sub)
		}
	}
	walk(nil, root)
	return out
}

// evaluate reports a policy at where/name against the valid identities.
func evaluate(root *common.ConfigGroup, where []string, name string, ids []*identity) Requirement {
	g := root
	for _, k := range where {
		g = g.GetGroups()[k]
	}
	label := channelGroup
	if len(where) > 0 {
		label = where[len(where)-1]
	}
	r := Requirement{Label: label + " " + strings.ToLower(name)}
	cp := g.GetPolicies()[name]
	if cp == nil {
		r.Rule = "missing policy"
		return r
	}
	e := evaluator{ids: ids}
	switch common.Policy_PolicyType(cp.GetPolicy().GetType()) {
	case common.Policy_IMPLICIT_META:
		var imp common.ImplicitMetaPolicy
		if proto.Unmarshal(cp.GetPolicy().GetValue(), &imp) != nil {
			r.Rule = "unreadable policy"
			return r
		}
		r.Rule = fmt.Sprintf("%s %s", imp.GetRule(), imp.GetSubPolicy())
		r.Members = slices.Sorted(maps.Keys(g.GetGroups()))
		r.Required = threshold(imp.GetRule(), len(r.Members))
		for _, m := range r.Members {
			if e.policy(g.GetGroups()[m], imp.GetSubPolicy()) {
				r.Signed = append(r.Signed, m)
			}
		}
		// Signing order reads better than alphabetical order.
		first := func(m string) int {
			id := mspID(g.GetGroups()[m])
			return slices.IndexFunc(ids, func(i *identity) bool { return i.mspID == id })
		}
		slices.SortStableFunc(r.Signed, func(a, b string) int { return first(a) - first(b) })
		for _, m := range r.Signed {
			if id := mspID(g.GetGroups()[m]); id != "" {
				r.SignedMSPIDs = append(r.SignedMSPIDs, id)
			}
		}
		r.Met = len(r.Signed) >= r.Required
	case common.Policy_SIGNATURE:
		var env common.SignaturePolicyEnvelope
		if proto.Unmarshal(cp.GetPolicy().GetValue(), &env) != nil {
			r.Rule = "unreadable policy"
			return r
		}
		r.Rule = "signature policy"
		r.Required = 1
		if n := env.GetRule().GetNOutOf(); n != nil {
			r.Required = int(n.GetN())
		}
		for _, id := range ids {
			if slices.ContainsFunc(env.GetIdentities(), id.satisfies) && !slices.Contains(r.Signed, id.mspID) {
				r.Signed = append(r.Signed, id.mspID)
			}
		}
		r.SignedMSPIDs = r.Signed
		r.Met = e.policy(g, name)
	default:
		r.Rule = fmt.Sprintf("policy type %d", cp.GetPolicy().GetType())
	}
	return r
}

// threshold is how many sub-policies an implicit meta rule needs, as
// Fabric's NewImplicitMetaPolicy computes it.
func threshold(rule common.ImplicitMetaPolicy_Rule, n int) int {
	if n == 0 {
		return 0
	}
	switch rule {
	case common.ImplicitMetaPolicy_ANY:
		return 1
	case common.ImplicitMetaPolicy_ALL:
		return n
	default:
		return n/2 + 1
	}
}

// evaluator evaluates policies as Fabric's policies package does, over
// identities whose signatures verified.
type evaluator struct{ ids []*identity }

func (e evaluator) policy(g *common.ConfigGroup, name string) bool {
	cp := g.GetPolicies()[name]
	if cp == nil {
		return false
	}
	switch common.Policy_PolicyType(cp.GetPolicy().GetType()) {
	case common.Policy_IMPLICIT_META:
		var imp common.ImplicitMetaPolicy
		if proto.Unmarshal(cp.GetPolicy().GetValue(), &imp) != nil {
			return false
		}
		satisfied := 0
		for _, sub := range g.GetGroups() {
			if e.policy(sub, imp.GetSubPolicy()) {
				satisfied++
			}
		}
		return satisfied >= threshold(imp.GetRule(), len(g.GetGroups()))
	case common.Policy_SIGNATURE:
		var env common.SignaturePolicyEnvelope
		if proto.Unmarshal(cp.GetPolicy().GetValue(), &env) != nil {
			return false
		}
		return e.signed(env.GetRule(), env.GetIdentities(), make([]bool, len(e.ids)))
	}
	return false
}

// signed is Fabric's compiled signature policy: each identity satisfies at
// most one SignedBy leaf.
func (e evaluator) signed(rule *common.SignaturePolicy, principals []*msp.MSPPrincipal, used []bool) bool {
	switch t := rule.GetType().(type) {
	case *common.SignaturePolicy_SignedBy:
		if t.SignedBy < 0 || int(t.SignedBy) >= len(principals) {
			return false
		}
		for i, id := range e.ids {
			if !used[i] && id.satisfies(principals[t.SignedBy]) {
				used[i] = true
				return true
			}
		}
		return false
	case *common.SignaturePolicy_NOutOf_:
		verified := 0
		tmp := make([]bool, len(used))
		for _, r := range t.NOutOf.GetRules() {
			copy(tmp, used)
			if e.signed(r, principals, tmp) {
				verified++
				copy(used, tmp)
			}
		}
		return verified >= int(t.NOutOf.GetN())
	}
	return false
}
