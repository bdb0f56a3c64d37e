//! C# through Mono: handlers and command-mode programs, compile errors.

use super::*;

#[tokio::test]
async fn csharp_compiles_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
using System;
using System.Collections.Generic;

public static class Functions
{
    public static object handler(Dictionary<string, object> ev, Runwarm.Context ctx)
    {
        if (ev.ContainsKey(\"fail\"))
        {
            throw new InvalidOperationException(\"asked to fail\");
        }
        return new Dictionary<string, object> { { \"double\", (long)ev[\"n\"] * 2 } };
    }
}
";
    let (_, p) = deploy(
        &d,
        "cs",
        manifest("csharp", "Main.cs"),
        json!({"Main.cs": src}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "cs", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("csharp", &p, &a, &b);
    let rec = script_error(&d, "cs", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "InvalidOperationException", "{rec:#}");
    // Mono writes `in /var/task/Main.cs:10` (not .NET's `:line 10`).
    assert_trace_has(&rec, "Main.cs:10");
}

#[tokio::test]
async fn csharp_command_mode_program_runs_in_the_warm_sandbox() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
using System;

public static class Program
{
    public static int Main()
    {
        string input = Console.In.ReadToEnd().Trim();
        if (input.Contains(\"fail\"))
        {
            throw new InvalidOperationException(\"asked to fail\");
        }
        Console.WriteLine(\"{\\\"echo\\\": \" + input + \"}\");
        return 0;
    }
}
";
    let mut m = manifest("csharp", "Program.cs");
    m["mode"] = json!("command");
    let (_, p) = deploy(&d, "cscmd", m, json!({"Program.cs": src})).await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "cscmd", json!({"n": 1}), json!({"n": 2})).await;
    assert_eq!(a["result"], json!({"echo": {"n": 1}}), "{a:#}");
    assert_eq!(b["result"], json!({"echo": {"n": 2}}), "{b:#}");
    timings("csharp (command)", &p, &a, &b);
    let rec = script_error(&d, "cscmd", json!({"fail": true})).await;
    assert_ne!(rec["exit_code"], 0, "{rec:#}");
    let stderr = rec["stderr"].as_str().unwrap_or_default();
    assert!(
        stderr.contains("asked to fail") && stderr.contains("Program.cs:10"),
        "{rec:#}"
    );
}

#[tokio::test]
async fn csharp_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
public static class Functions
{
    public static object handler() { return undefinedThing; }
}
";
    expect_prepare_failure(
        &d,
        "csbad",
        manifest("csharp", "Main.cs"),
        json!({"Main.cs": src}),
        &["Main.cs(3,45): error CS0103", "undefinedThing"],
    )
    .await;
}
