module halb

go 1.26.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sync v0.25.0
)

require golang.org/x/sys v0.1.0 // indirect
