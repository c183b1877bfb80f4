package actors

// WithSnapshotHook returns cfg with a hook that runs on the snapshot
// goroutine before each encode. It exists for tests only (this file is
// compiled into test binaries), so that a test in package actors_test can
// hold an encode back and show the actor serving meanwhile.
func WithSnapshotHook(cfg SKUConfig, hook func()) SKUConfig {
	cfg.snapshotHook = hook
	return cfg
}
