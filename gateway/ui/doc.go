// Package ui holds the operator dashboard page that every node serves at
// /ui: one self-contained HTML file (its style and script inline, nothing
// loaded from elsewhere, no build step), embedded in the binary. The page
// polls its node's GET /v1/dashboard once a second.
//
// The package's test (browser_test.go, run by make test-ui) loads the page
// from a three-node cluster in headless Chromium.
package ui
