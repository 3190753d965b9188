// Package fabricconfig renders the Fabric configuration of the consortium's
// nodes and channel from plain values: a peer's core.yaml and an orderer's
// orderer.yaml, adapted from the sample configuration of the Fabric release
// the binaries come from, and the configtx.yaml configtxgen makes the
// channel's genesis block and an NMI's organisation definition from.
//
// It only renders: it starts no process and reads or writes no file; the
// caller passes the sample configuration's bytes in and writes the result
// where the node expects it (package consortium does both). Kept apart from
// the tool that runs the network, the rendering can be checked against
// golden files without a network.
package fabricconfig
