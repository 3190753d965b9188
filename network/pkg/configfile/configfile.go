// Package configfile reads and writes the project's YAML configuration
// files (the registry's, the explorer's): strictly, so that a misspelt or
// misplaced setting is an error rather than silently ignored, and naming the
// file in every error.
package configfile

import (
	"bytes"
	"fmt"
	"os"
	"sort"

	"gopkg.in/yaml.v3"
)

// Validator is a configuration that checks itself once read.
type Validator interface {
	Validate() error
}

// Load reads the YAML file path into a T, refusing settings T has no field
// for. When *T is a Validator, the configuration must also pass Validate.
func Load[T any](path string) (T, error) {
	var c T
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read configuration: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("configuration %s: %w", path, err)
	}
	if v, ok := any(&c).(Validator); ok {
		if err := v.Validate(); err != nil {
			return c, fmt.Errorf("configuration %s: %w", path, err)
		}
	}
	return c, nil
}

// Save writes v as YAML to path, with perm if the file is new.
func Save(path string, v any, perm os.FileMode) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, perm)
}

// Required reports each setting of fields (name: value) whose value is
// empty, as "<name> is required", in the order of the names.
func Required(fields map[string]string) []error {
	names := make([]string, 0, len(fields))
	for name, v := range fields {
		if v == "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	for i, name := range names {
		errs[i] = fmt.Errorf("%s is required", name)
	}
	return errs
}
