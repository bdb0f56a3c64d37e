module runwarm.dev/runwarm

go 1.21
