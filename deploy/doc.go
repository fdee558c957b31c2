// Package deploy holds the files operators deploy entra-auth with (envoy/envoy.yaml, a
// complete Envoy bootstrap; istio/, the Istio manifests) and the tests that check them
// against Envoy's and Istio's own API definitions and against the filter's configuration
// parser, so that what the README tells an operator to apply is accepted as written.
package deploy
