package follow

import blockfollow "github.com/inter-nmi/pki/network/pkg/follow"

// Sink is what Run hands the blocks to, at the index's checkpoint.
func (f *Follower) Sink() (blockfollow.Sink, error) {
	s := &sink{f: f}
	return s, s.load()
}
