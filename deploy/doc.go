// Package deploy holds deployment examples for orderd, not code: a systemd
// unit (systemd/) and a Kubernetes StatefulSet (kubernetes/), described in
// README.md. Its test checks them against the real orderd: every ORDERD_*
// setting names a flag, and systemd-analyze verify accepts the unit.
package deploy
