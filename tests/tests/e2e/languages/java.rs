//! Java: javac, Maven dependencies on the classpath, compile errors.

use super::*;

const JAVA_HANDLER: &str = "\
import java.util.Map;

public class Check {
    public static Object handler(Map<String, Object> event, runwarm.Context ctx) {
        if (Boolean.TRUE.equals(event.get(\"fail\"))) {
            throw new IllegalStateException(\"asked to fail\");
        }
        long n = ((Number) event.get(\"n\")).longValue();
        return Map.of(\"double\", n * 2);
    }
}
";

#[tokio::test]
async fn java_compiles_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("javac"), Need::Program("java")]) {
        return;
    }
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "java",
        manifest("java", "Check.java"),
        json!({"Check.java": JAVA_HANDLER}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "java", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("java", &p, &a, &b);
    let rec = script_error(&d, "java", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "IllegalStateException", "{rec:#}");
    assert_trace_has(&rec, "Check.java:6");
}

#[tokio::test]
async fn java_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("javac"), Need::Program("java")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
import java.util.Map;
public class Check {
    public static Object handler(Map<String, Object> event) { return undefinedThing; }
}
";
    expect_prepare_failure(
        &d,
        "javabad",
        manifest("java", "Check.java"),
        json!({"Check.java": src}),
        &["Check.java:3: error", "undefinedThing"],
    )
    .await;
}

#[tokio::test]
async fn java_maven_dependency_is_on_the_classpath() {
    if !require(&[
        Need::Program("javac"),
        Need::Program("java"),
        Need::Program("mvn"),
    ]) {
        return;
    }
    let d = daemon().await;
    let pom = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runwarm.test</groupId>
  <artifactId>gson-check</artifactId>
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
    let src = "\
import com.google.gson.Gson;
import java.util.Map;
import java.util.TreeMap;

public class Pretty {
    public static Object handler(Map<String, Object> event) {
        String jar = Gson.class.getProtectionDomain().getCodeSource().getLocation().getPath();
        return Map.of(\"json\", new Gson().toJson(new TreeMap<>(event)),
                \"jar\", jar.substring(jar.lastIndexOf('/') + 1));
    }
}
";
    let (_, p) = deploy(
        &d,
        "gson",
        manifest("java", "Pretty.java"),
        json!({"Pretty.java": src, "pom.xml": pom}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    let (a, b) = two_calls(&d, "gson", json!({"b": 2, "a": "x"}), json!({"k": true})).await;
    assert_eq!(
        a["result"],
        json!({"json": "{\"a\":\"x\",\"b\":2}", "jar": "gson-2.11.0.jar"})
    );
    assert_eq!(b["result"]["json"], "{\"k\":true}");
    timings("java (gson)", &p, &a, &b);
}
