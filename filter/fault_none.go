//go:build !faultinject

package filter

// Fault injection exists only in test builds (the faultinject build tag, see
// fault_inject.go); in a release build these do nothing and cost nothing.

func armFaults([][2]string) {}

func injectFault(string) {}
