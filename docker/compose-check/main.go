// compose-check loads a Compose file the way `docker compose config` does (compose-go: schema
// validation, interpolation from the environment and .env, merge, normalisation, consistency)
// and prints the resolved model as JSON.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE...")
		os.Exit(2)
	}
	wd, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(os.Args[1:],
		cli.WithWorkingDirectory(wd),
		cli.WithEnvFiles(),
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithName("newsmon"),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := json.MarshalIndent(project, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compose-check:", err)
	os.Exit(1)
}
