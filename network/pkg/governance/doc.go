// Package governance is how the consortium changes its channel
// configuration: an NMI proposes an update (an organisation joins or leaves,
// a SmartBFT consenter joins or leaves), the other NMIs' admins sign it, any
// of them can see whose signatures are still missing, and one submits it to
// the ordering service, which applies it only if the channel's policies are
// met.
//
// A proposal travels as the file Fabric's own tools read and write: an
// Envelope of type CONFIG_UPDATE whose payload data is a ConfigUpdateEnvelope
// (what `configtxlator` produces and `peer channel signconfigtx -f` and
// `peer channel update -f` consume). An admin may sign with either tool.
// The human description travels beside it in "<file>.description", because
// the envelope has no field for it that `peer channel signconfigtx` would
// keep; without that file, Load derives a description from the update.
//
// The constructors compute the update from the channel's current
// configuration as cscc GetChannelConfig returns it and never modify it.
package governance
