//! The bundled samples (`samples/*` in the repository, embedded in the binary): listed under
//! `/v1/samples`, registered at start on the embedded default, clonable under a new name.

use include_dir::{Dir, include_dir};
use serde::Serialize;
use serde_json::{Map, Value, json};

static EMBEDDED_SAMPLES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../samples");

/// The manifest file of a script folder.
pub const MANIFEST_FILE: &str = "runwarm.toml";

/// One sample.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sample {
    /// Folder name; also the script name it registers as.
    pub id: String,
    /// Runtime.
    pub runtime: String,
    /// Description.
    pub description: String,
    /// The `POST /v1/scripts` body that registers it.
    #[serde(skip)]
    pub body: Value,
}

/// All samples.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    samples: Vec<Sample>,
}

/// Why a sample could not be read (a build defect: the test below catches it).
#[derive(Debug, thiserror::Error)]
#[error("sample {id}: {detail}")]
pub struct SampleError {
    id: String,
    detail: String,
}

impl Samples {
    /// Reads the embedded samples.
    pub fn embedded() -> Result<Self, SampleError> {
        let mut samples = Vec::new();
        for dir in EMBEDDED_SAMPLES.dirs() {
            let id = dir.path().display().to_string();
            let err = |detail: String| SampleError {
                id: id.clone(),
                detail,
            };
            let manifest_text = dir
                .get_file(dir.path().join(MANIFEST_FILE))
                .and_then(|f| f.contents_utf8())
                .ok_or_else(|| err(format!("no {MANIFEST_FILE}")))?;
            let (name, manifest) = manifest_from_toml(manifest_text).map_err(err)?;
            let mut files = Map::new();
            collect_files(dir, dir, &mut files);
            let runtime = manifest
                .get("runtime")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let description = manifest
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let name = name.unwrap_or_else(|| id.clone());
            let body = json!({"name": name, "manifest": manifest, "files": files});
            samples.push(Sample {
                id: id.clone(),
                runtime,
                description,
                body,
            });
        }
        samples.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self { samples })
    }

    /// Every sample.
    pub fn all(&self) -> &[Sample] {
        &self.samples
    }

    /// One sample by id.
    pub fn get(&self, id: &str) -> Option<&Sample> {
        self.samples.iter().find(|s| s.id == id)
    }
}

fn collect_files(root: &Dir<'_>, dir: &Dir<'_>, out: &mut Map<String, Value>) {
    for file in dir.files() {
        let Ok(rel) = file.path().strip_prefix(root.path()) else {
            continue;
        };
        let rel = rel.to_string_lossy().into_owned();
        if rel == MANIFEST_FILE {
            continue;
        }
        let value = match file.contents_utf8() {
            Some(text) => json!({"text": text}),
            None => {
                use base64::Engine;
                json!({"base64": base64::engine::general_purpose::STANDARD.encode(file.contents())})
            }
        };
        out.insert(rel, value);
    }
    for sub in dir.dirs() {
        collect_files(root, sub, out);
    }
}

/// Splits a `runwarm.toml` into the script name (its `name` key, if any) and the manifest
/// (every other key), as JSON.
pub fn manifest_from_toml(text: &str) -> Result<(Option<String>, Value), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let mut manifest = serde_json::to_value(table).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    let name = manifest
        .as_object_mut()
        .and_then(|m| m.remove("name"))
        .and_then(|v| v.as_str().map(str::to_owned));
    Ok((name, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::Manifest;

    #[test]
    fn every_sample_has_a_valid_manifest_and_its_entry() {
        let samples = Samples::embedded().unwrap();
        assert!(samples.all().len() >= 4);
        for s in samples.all() {
            let m: Manifest = serde_json::from_value(s.body["manifest"].clone())
                .unwrap_or_else(|e| panic!("sample {}: {e}", s.id));
            assert!(
                s.body["files"].get(&m.entry).is_some(),
                "sample {} lacks {}",
                s.id,
                m.entry
            );
            assert_eq!(
                s.body["name"],
                s.id.as_str(),
                "sample folder and name differ"
            );
            assert!(
                !m.description.is_empty(),
                "sample {} has no description",
                s.id
            );
            assert!(
                m.tags.first().map(String::as_str) == Some("sample") && m.tags.len() >= 2,
                "sample {}: tags must be [\"sample\", \"<language>\", ...], not {:?}",
                s.id,
                m.tags
            );
            if let Some(params) = &m.params {
                assert_eq!(params["type"], "object", "sample {}: params", s.id);
                jsonschema::validator_for(params)
                    .unwrap_or_else(|e| panic!("sample {}: params do not compile: {e}", s.id));
            }
        }
    }

    #[test]
    fn samples_of_every_language_are_embedded() {
        let samples = Samples::embedded().unwrap();
        for (id, runtime, files) in [
            (
                "config-check-python",
                "python3",
                &["check.py", "requirements.txt"][..],
            ),
            ("api-smoke-ts", "typescript", &["smoke.ts"]),
            ("db-health-java", "java", &["DbHealth.java", "pom.xml"]),
            ("tls-expiry-go", "go", &["main.go", "go.mod"]),
            ("transform-csharp", "csharp", &["Transform.cs"]),
            ("checksum-cpp", "cpp", &["checksum.cpp"]),
            ("hello-ruby", "ruby", &["main.rb"]),
            ("hello-php", "php", &["main.php"]),
        ] {
            let s = samples
                .get(id)
                .unwrap_or_else(|| panic!("sample {id} is not embedded"));
            assert_eq!(s.runtime, runtime, "sample {id}");
            for f in files {
                assert!(s.body["files"].get(*f).is_some(), "sample {id} lacks {f}");
            }
        }
    }
}
