module halb

go 1.26.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
)

require golang.org/x/term v0.48.0
