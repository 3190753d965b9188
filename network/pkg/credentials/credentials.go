// Package credentials holds the bearer tokens of the registry's and the
// explorer's clients, each bound to one role of one NMI, of which the
// servers keep only the SHA-256. The consortium tool provisions them.
//
// A token is 32 random bytes, so a plain hash is enough: there is nothing to
// guess that a slow password hash would protect, and checking a request
// costs one SHA-256. A leaked credentials file reveals no token.
package credentials

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// TokenPrefix starts every token, so a leaked one is easy to recognise
// (and to search for in logs and repositories).
const TokenPrefix = "nmipki_"

// Credential is a token's stored form.
type Credential struct {
	// ID names the credential in logs and audit trails (never the token).
	ID      string `json:"id"`
	Role    Role   `json:"role"`
	SHA256  string `json:"sha256"`
	Created string `json:"created"`
}

// Principal is the authenticated caller.
type Principal struct {
	ID   string
	Role Role
}

// Store answers which principal a token belongs to.
type Store struct {
	byHash map[string]Principal
}

// File is the stored set of credentials.
type File struct {
	Credentials []Credential `json:"credentials"`
}

// Load reads a credentials file into a store.
func Load(path string) (*Store, error) {
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return New(f.Credentials)
}

// ReadFile reads a credentials file.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return &f, nil
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// New builds a store from credentials.
func New(creds []Credential) (*Store, error) {
	s := &Store{byHash: map[string]Principal{}}
	for _, c := range creds {
		if !slices.Contains(Roles, c.Role) {
			return nil, fmt.Errorf("credential %q: unknown role %q", c.ID, c.Role)
		}
		if !hashRE.MatchString(c.SHA256) {
			return nil, fmt.Errorf("credential %q: sha256 must be 64 lowercase hex characters", c.ID)
		}
		s.byHash[c.SHA256] = Principal{ID: c.ID, Role: c.Role}
	}
	return s, nil
}

// ErrUnknownToken means the token matches no credential.
var ErrUnknownToken = errors.New("unknown or revoked token")

// Authenticate returns the principal of a token.
func (s *Store) Authenticate(token string) (Principal, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return Principal{}, fmt.Errorf("token does not start with %q", TokenPrefix)
	}
	p, ok := s.byHash[Hash(token)]
	if !ok {
		return Principal{}, ErrUnknownToken
	}
	return p, nil
}

// Hash is a token's stored form.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken makes a token and its credential.
func NewToken(id string, role Role) (string, Credential, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", Credential{}, err
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	return token, Credential{ID: id, Role: role, SHA256: Hash(token), Created: time.Now().UTC().Format(time.RFC3339)}, nil
}

// Provision makes one token per role for an NMI, unless its credentials file
// exists: it writes the hashes to credentialsFile and each token, readable
// only by its owner, to tokenDir/<role>.token.
func Provision(nmi, credentialsFile, tokenDir string) error {
	return ProvisionRoles(nmi, credentialsFile, tokenDir, Roles...)
}

// ProvisionRoles is Provision for the given roles only.
func ProvisionRoles(owner, credentialsFile, tokenDir string, roles ...Role) error {
	if _, err := os.Stat(credentialsFile); err == nil {
		return nil
	}
	if err := os.MkdirAll(tokenDir, 0o700); err != nil {
		return err
	}
	var f File
	for _, role := range roles {
		token, cred, err := NewToken(strings.ToLower(owner)+"-"+string(role), role)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tokenDir, string(role)+".token"), []byte(token+"\n"), 0o600); err != nil {
			return err
		}
		f.Credentials = append(f.Credentials, cred)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(credentialsFile), 0o755); err != nil {
		return err
	}
	return os.WriteFile(credentialsFile, b, 0o644)
}
