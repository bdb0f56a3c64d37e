//! The texts of the handlers and of what their bundles and anchors need besides (dependency
//! manifests, the anchors' `main`s, the shims' JSON codecs), as the languages write them.

pub(super) const PYTHON: &str = r#"def handler(event, context):
    return {"greeting": "hello " + event.get("name", "world")}
"#;

pub(super) const NODE: &str = r#"export function handler(event) {
  return { greeting: "hello " + (event.name ?? "world") };
}
"#;

pub(super) const TYPESCRIPT: &str = r#"interface Event {
  name?: string;
}

export function handler(event: Event): { greeting: string } {
  return { greeting: "hello " + (event.name ?? "world") };
}
"#;

pub(super) const PACKAGE_JSON: &str = r#"{
  "name": "bench-hello",
  "version": "1.0.0",
  "private": true,
  "dependencies": {"is-number": "7.0.0"}
}
"#;

/// The handler itself, shared by the daemon's binary and the anchor's.
pub(super) const GO_HANDLER: &str = r#"package main

type Event struct {
	Name string `json:"name"`
}

func handler(e Event) (map[string]string, error) {
	if e.Name == "" {
		e.Name = "world"
	}
	return map[string]string{"greeting": "hello " + e.Name}, nil
}
"#;

pub(super) const GO_MAIN: &str = r#"package main

import "runwarm.dev/runwarm"

func main() { runwarm.Start(handler) }
"#;

pub(super) const GO_ANCHOR_MAIN: &str = r#"package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var e Event
	if err := json.Unmarshal([]byte(os.Args[1]), &e); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := handler(e)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
"#;

pub(super) const GO_MOD: &str = "module example.com/benchhello

go 1.21

require github.com/google/uuid v1.6.0
";

/// What `go mod download` writes for that `go.mod`.
pub(super) const GO_SUM: &str =
    "github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
";

pub(super) const JAVA: &str = r#"import java.util.Map;

public class Hello {
    public static Object handler(Map<String, Object> event) {
        return Map.of("greeting", "hello " + event.getOrDefault("name", "world"));
    }
}
"#;

/// The anchor's `main`: the shim's own JSON codec, without the protocol.
pub(super) const JAVA_ANCHOR_MAIN: &str = r#"import java.util.Map;

public class Main {
    @SuppressWarnings("unchecked")
    public static void main(String[] args) {
        Map<String, Object> event = (Map<String, Object>) runwarm.Json.parse(args[0]);
        System.out.println(runwarm.Json.write(Hello.handler(event)));
    }
}
"#;

pub(super) const JAVA_JSON: &str = include_str!("../../../executors/java/runwarm/Json.java");

pub(super) const POM_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runwarm.bench</groupId>
  <artifactId>bench-hello</artifactId>
  <version>1.0.0</version>
  <dependencies>
    <dependency>
      <groupId>com.google.code.gson</groupId>
      <artifactId>gson</artifactId>
      <version>2.11.0</version>
    </dependency>
  </dependencies>
</project>
"#;

pub(super) const CSHARP: &str = r#"using System.Collections.Generic;

public static class Hello
{
    public static object handler(Dictionary<string, object> ev)
    {
        object name;
        if (!ev.TryGetValue("name", out name))
        {
            name = "world";
        }
        return new Dictionary<string, object> { { "greeting", "hello " + name } };
    }
}
"#;

/// The anchor's `Main`: the shim's own JSON reader and writer, without the protocol.
pub(super) const CSHARP_ANCHOR_MAIN: &str = r#"using System;
using System.Collections.Generic;

public static class AnchorMain
{
    public static void Main(string[] args)
    {
        var ev = (Dictionary<string, object>)Runwarm.Json.Parse(args[0]);
        Console.WriteLine(Runwarm.Json.Serialize(Hello.handler(ev)));
    }
}
"#;

pub(super) const CSHARP_JSON: &str = include_str!("../../../executors/csharp/RunwarmJson.cs");

pub(super) const RUBY: &str = r#"def handler(event, context)
  { "greeting" => "hello #{event.fetch("name", "world")}" }
end
"#;

pub(super) const PHP: &str = r#"<?php
function handler(array $event, $context): array
{
    return ['greeting' => 'hello ' . ($event['name'] ?? 'world')];
}
"#;

/// Command mode: the payload's top-level `name` arrives as `PARAM_NAME`.
pub(super) const BASH: &str = r#"printf '{"greeting": "hello %s"}\n' "${PARAM_NAME:-world}"
"#;

/// Command mode: the payload JSON on stdin, the result as the last stdout line.
pub(super) const C: &str = r#"#include <stdio.h>
#include <string.h>

int main(void) {
    char in[4096], name[256] = "world";
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    const char *at = strstr(in, "\"name\"");
    if (at && (at = strchr(at + 6, '"'))) {
        const char *end = strchr(++at, '"');
        if (end && (size_t)(end - at) < sizeof name) {
            memcpy(name, at, (size_t)(end - at));
            name[end - at] = 0;
        }
    }
    printf("{\"greeting\": \"hello %s\"}\n", name);
    return 0;
}
"#;

pub(super) const CPP: &str = r#"#include <iostream>
#include <iterator>
#include <string>

int main() {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    std::string name = "world";
    auto key = in.find("\"name\"");
    if (key != std::string::npos) {
        auto open = in.find('"', key + 6);
        auto close = open == std::string::npos ? open : in.find('"', open + 1);
        if (close != std::string::npos) {
            name = in.substr(open + 1, close - open - 1);
        }
    }
    std::cout << "{\"greeting\": \"hello " << name << "\"}" << std::endl;
    return 0;
}
"#;
