// Empty on purpose: its presence lets sdk_wasip1.go declare functions without bodies,
// whose bodies the linker takes from the SDK (see the go:linkname lines there).
