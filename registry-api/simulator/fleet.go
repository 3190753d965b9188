package simulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/inter-nmi/pki/pki-chaincode/meter"
	"github.com/inter-nmi/pki/registry-api/api"
	"github.com/inter-nmi/pki/registry-api/loadprofile"
)

// Meter is a simulated meter: its ID, the private key in its secure
// element, the legally relevant software it runs and its type.
type Meter struct {
	ID  string
	Key *meter.PrivateKey
	// Software is what the meter runs at the start of a run; the zero
	// value means DefaultSoftware.
	Software meter.Software
	// TypeID, if set, is the type the meter is registered as.
	TypeID string
}

// Registration is the registration of the meter by the NMI nmi (its MSP
// ID), with the simulator's metadata, the meter's software and type, and
// the meter's proof of possession for that NMI, signed with the key in its
// secure element as a real meter signs it at manufacture or installation.
func (m *Meter) Registration(nmi string) (meter.Registration, error) {
	sw := m.Runs()
	reg := meter.Registration{
		MeterID:   m.ID,
		PublicKey: m.Key.Public().PEM(),
		Metadata: meter.Metadata{Manufacturer: "Inter-NMI simulator", Model: "metersim", SerialNumber: m.ID,
			SoftwareID: sw.ID, SoftwareChecksum: sw.Checksum},
		TypeID: m.TypeID,
	}
	if err := reg.Prove(m.Key, nmi); err != nil {
		return meter.Registration{}, fmt.Errorf("proof of meter %s: %w", m.ID, err)
	}
	return reg, nil
}

// Runs is the software the meter runs at the start of a run.
func (m *Meter) Runs() meter.Software {
	if m.Software == (meter.Software{}) {
		return DefaultSoftware()
	}
	return m.Software
}

// SoftwareID identifies the simulated meters' legally relevant software.
const SoftwareID = "metersim-1"

// DefaultSoftware is the software a simulated meter runs unless it is
// told otherwise: SoftwareID, with the SHA-256 of a text naming it as its
// checksum.
func DefaultSoftware() meter.Software {
	sum := sha256.Sum256([]byte("inter-nmi metersim " + SoftwareID))
	return meter.Software{ID: SoftwareID, Checksum: "sha256:" + hex.EncodeToString(sum[:])}
}

// Fleet is a set of simulated meters.
type Fleet []*Meter

// MeterIDs names n meters prefix-0001, prefix-0002, … starting at from (1-based).
func MeterIDs(prefix string, from, n int) []string {
	width := max(4, len(strconv.Itoa(from+n-1)))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%0*d", prefix, width, from+i)
	}
	return ids
}

// Generate makes a meter with a new key on curve for each ID.
func Generate(ids []string, curve meter.Curve) (Fleet, error) {
	f := make(Fleet, len(ids))
	for i, id := range ids {
		if err := meter.ValidateMeterID(id); err != nil {
			return nil, err
		}
		k, err := meter.GenerateKey(curve)
		if err != nil {
			return nil, fmt.Errorf("key of meter %s: %w", id, err)
		}
		f[i] = &Meter{ID: id, Key: k}
	}
	return f, nil
}

// Registrations are the fleet's registrations by the NMI nmi (MSP ID), each
// proved by its meter for it.
func (f Fleet) Registrations(nmi string) ([]meter.Registration, error) {
	regs := make([]meter.Registration, len(f))
	for i, m := range f {
		var err error
		if regs[i], err = m.Registration(nmi); err != nil {
			return nil, err
		}
	}
	return regs, nil
}

// Registrar enrols meters in batches; *client.Client is one.
type Registrar interface {
	RegisterMeters(ctx context.Context, regs []meter.Registration) (*api.Enrolment, error)
}

// Register enrols the fleet through the registry of the NMI nmi (the MSP
// ID it speaks for, which the meters' proofs name) in batches of at most
// chunk meters (at most api.MaxRegistrationBatch; 0 means that). A batch is
// all or nothing on the ledger; done, if set, is called with each batch once
// it is committed, so a caller can keep the keys of registered meters only.
// It returns how many meters were registered.
func Register(ctx context.Context, r Registrar, nmi string, f Fleet, chunk int, done func(Fleet) error) (int, error) {
	if chunk <= 0 || chunk > api.MaxRegistrationBatch {
		chunk = api.MaxRegistrationBatch
	}
	registered := 0
	for from := 0; from < len(f); from += chunk {
		part := f[from:min(from+chunk, len(f))]
		regs, err := part.Registrations(nmi)
		if err != nil {
			return registered, err
		}
		e, err := r.RegisterMeters(ctx, regs)
		if err != nil {
			return registered, fmt.Errorf("register meters %s to %s: %w", part[0].ID, part[len(part)-1].ID, err)
		}
		registered += e.Registered
		if done != nil {
			if err := done(part); err != nil {
				return registered, err
			}
		}
	}
	return registered, nil
}

// KeyDir is a directory that keeps a fleet between runs: each meter's private
// key as <id>.key.pem (mode 0600) and, in state.json, the highest sequence
// number a run has used, so that the next run stays above it.
type KeyDir string

const (
	keySuffix = ".key.pem"
	stateFile = "state.json"
)

// Load reads every meter key in the directory, ordered by meter ID. A missing
// directory is an empty fleet.
func (d KeyDir) Load() (Fleet, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read keys directory: %w", err)
	}
	var f Fleet
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), keySuffix)
		if !ok || e.IsDir() {
			continue
		}
		if err := meter.ValidateMeterID(id); err != nil {
			return nil, fmt.Errorf("key file %s: %w", e.Name(), err)
		}
		pem, err := os.ReadFile(filepath.Join(string(d), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read key of meter %s: %w", id, err)
		}
		k, err := meter.ParsePrivateKeyPEM(string(pem))
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", e.Name(), err)
		}
		f = append(f, &Meter{ID: id, Key: k})
	}
	sort.Slice(f, func(i, j int) bool { return f[i].ID < f[j].ID })
	return f, nil
}

// Save writes the keys of the fleet's meters. A key file that exists already
// must hold the same key.
func (d KeyDir) Save(f Fleet) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create keys directory: %w", err)
	}
	for _, m := range f {
		path := filepath.Join(string(d), m.ID+keySuffix)
		if old, err := os.ReadFile(path); err == nil {
			k, err := meter.ParsePrivateKeyPEM(string(old))
			if err != nil || !k.Public().Equal(m.Key.Public()) {
				return fmt.Errorf("key file %s exists and holds another key", path)
			}
			continue
		}
		pem, err := m.Key.PEM()
		if err != nil {
			return fmt.Errorf("encode key of meter %s: %w", m.ID, err)
		}
		if err := writeExclusive(path, []byte(pem), 0o600); err != nil {
			return fmt.Errorf("write key of meter %s: %w", m.ID, err)
		}
	}
	return nil
}

func writeExclusive(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type state struct {
	LastSeq uint64 `json:"lastSeq"`
}

// LastSeq is the highest sequence number a run recorded, 0 if none.
func (d KeyDir) LastSeq() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(string(d), stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read run state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("run state %s: %w", filepath.Join(string(d), stateFile), err)
	}
	return s.LastSeq, nil
}

// SetLastSeq records the highest sequence number a run uses; it is written
// before the run sends anything, so an interrupted run is covered too.
func (d KeyDir) SetLastSeq(seq uint64) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create keys directory: %w", err)
	}
	b, _ := json.Marshal(state{LastSeq: seq})
	tmp := filepath.Join(string(d), stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(string(d), stateFile)); err != nil {
		return fmt.Errorf("write run state: %w", err)
	}
	return nil
}

// SeqOffset is the offset that lifts a schedule's first sequence number above
// last, the highest one an earlier run used; 0 if it is above already.
func SeqOffset(s loadprofile.Schedule, last uint64) uint64 {
	first := loadprofile.SeqAt(s.Time(0))
	if first > last {
		return 0
	}
	return last + 1 - first
}
