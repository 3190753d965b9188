package fabricconfig

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sample is a Fabric sample configuration (core.yaml, orderer.yaml) to be
// adapted to one node. Editing the parsed document keeps every default and
// comment of the release the binaries came from; only what the topology
// decides is changed. A Sample is never modified: each rendering starts
// from the bytes it was parsed from.
type Sample struct{ raw []byte }

// ParseSample checks that b is a single YAML document.
func ParseSample(b []byte) (*Sample, error) {
	if _, err := parseDoc(b); err != nil {
		return nil, err
	}
	return &Sample{raw: b}, nil
}

func parseDoc(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a single YAML document")
	}
	return doc.Content[0], nil
}

// Setting is one value of a configuration at a dotted path
// ("peer.gossip.bootstrap").
type Setting struct {
	Path  string
	Value any
}

// Render applies settings in order, each replacing the value at its path
// and creating missing mappings on the way, and returns the document. It
// reports the first setting that cannot be applied.
func (s *Sample) Render(settings []Setting) ([]byte, error) {
	root, err := parseDoc(s.raw)
	if err != nil {
		return nil, err
	}
	for _, st := range settings {
		if err := set(root, st.Path, st.Value); err != nil {
			return nil, err
		}
	}
	return yaml.Marshal(root)
}

// set replaces the value at a dotted path, creating missing mappings on the
// way.
func set(root *yaml.Node, path string, value any) error {
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	node := root
	parts := strings.Split(path, ".")
	for i, key := range parts {
		if node.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %s is not a mapping", path, strings.Join(parts[:i], "."))
		}
		var next *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			if node.Content[j].Value == key {
				next = node.Content[j+1]
				if i == len(parts)-1 {
					node.Content[j+1] = &v
				}
				break
			}
		}
		if i == len(parts)-1 {
			if next == nil {
				node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &v)
			}
			return nil
		}
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode}
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, next)
		}
		node = next
	}
	return nil
}
