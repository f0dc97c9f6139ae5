//! Launch files: TOML, composed with `include = [...]`, overridden with `--set key=value`.
//!
//! Every value remembers where it came from (file and line, or the `--set` argument), so an
//! error names the file, the line and the field. Relative paths in a file are resolved against
//! that file's directory; paths given with `--set` against the working directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A launch file, at a 1-based line.
    File {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
    },
    /// A `--set` argument.
    Override(String),
}

impl Origin {
    /// The directory relative paths from this origin are resolved against (empty: the
    /// working directory).
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Origin::File { path, .. } => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Origin::Override(_) => PathBuf::new(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Override(arg) => write!(f, "--set {arg}"),
        }
    }
}

/// A launch-file error. Each names the file and line (or the `--set` argument) and the field.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{path}:{line}:{column}: invalid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Files include each other in a cycle.
    #[error("include cycle: {0}")]
    IncludeCycle(String),
    /// A field's value is wrong.
    #[error("{origin}: {field}: {message}")]
    Field {
        /// Where the value came from.
        origin: String,
        /// The dotted field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A `--set` argument is malformed.
    #[error("--set {arg}: {message}")]
    Override {
        /// The argument.
        arg: String,
        /// What is wrong.
        message: String,
    },
}

/// Removes `.` and resolves `..` lexically where a normal component precedes it.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// The merged values of a launch file and its includes, with their origins.
#[derive(Clone, Debug, Default)]
pub struct Layered {
    values: BTreeMap<String, (toml::Value, Origin)>,
    tables: BTreeMap<String, Origin>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

fn line_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn value_from_edit(v: &toml_edit::Value) -> Result<toml::Value, String> {
    let mut v = v.clone();
    v.decor_mut().clear();
    let doc = format!("v = {v}");
    let table: toml::Table = toml::from_str(&doc).map_err(|e| e.message().to_string())?;
    table
        .get("v")
        .cloned()
        .ok_or_else(|| "value lost in conversion".to_string())
}

impl Layered {
    /// Loads a launch file with its includes.
    pub fn load(path: &Path) -> Result<Self, LaunchError> {
        let mut layered = Layered::default();
        let mut stack = Vec::new();
        layered.load_file(path, &mut stack)?;
        Ok(layered)
    }

    fn load_file(&mut self, path: &Path, stack: &mut Vec<PathBuf>) -> Result<(), LaunchError> {
        let canonical = path.canonicalize().map_err(|e| LaunchError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if stack.contains(&canonical) {
            let mut chain: Vec<String> = stack.iter().map(|p| p.display().to_string()).collect();
            chain.push(canonical.display().to_string());
            return Err(LaunchError::IncludeCycle(chain.join(" -> ")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| LaunchError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let doc = toml_edit::ImDocument::parse(text.as_str()).map_err(|e| {
            let (line, column) = e.span().map(|s| line_of(&text, s.start)).unwrap_or((1, 1));
            LaunchError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        stack.push(canonical);
        self.files.push(path.to_path_buf());
        let origin_at = |span: Option<std::ops::Range<usize>>| Origin::File {
            path: path.to_path_buf(),
            line: span.map(|s| line_of(&text, s.start).0).unwrap_or(1),
        };
        // Includes first, so this file's values override theirs.
        if let Some(item) = doc.as_table().get("include") {
            let origin = origin_at(item.span());
            let field_err = |message: &str| LaunchError::Field {
                origin: origin.to_string(),
                field: "include".into(),
                message: message.into(),
            };
            let arr = item
                .as_array()
                .ok_or_else(|| field_err("must be an array of file paths"))?;
            for v in arr.iter() {
                let rel = v
                    .as_str()
                    .ok_or_else(|| field_err("must be an array of file paths"))?;
                let target = origin.base_dir().join(rel);
                if !target.exists() {
                    return Err(field_err(&format!(
                        "included file {} does not exist",
                        target.display()
                    )));
                }
                self.load_file(&target, stack)?;
            }
        }
        self.walk(doc.as_table(), "", &text, path)?;
        stack.pop();
        Ok(())
    }

    fn walk(
        &mut self,
        table: &toml_edit::Table,
        prefix: &str,
        text: &str,
        path: &Path,
    ) -> Result<(), LaunchError> {
        for (key, item) in table.iter() {
            if prefix.is_empty() && key == "include" {
                continue;
            }
            let full = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            let span = table
                .key(key)
                .and_then(|k| k.span())
                .or_else(|| item.span());
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: span.map(|s| line_of(text, s.start).0).unwrap_or(1),
            };
            match item {
                toml_edit::Item::Table(t) => {
                    self.tables.entry(full.clone()).or_insert(origin);
                    self.walk(t, &full, text, path)?;
                }
                toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                    self.tables.entry(full.clone()).or_insert(origin);
                    let t = t.clone().into_table();
                    self.walk(&t, &full, text, path)?;
                }
                toml_edit::Item::Value(v) => {
                    let value = value_from_edit(v).map_err(|message| LaunchError::Field {
                        origin: origin.to_string(),
                        field: full.clone(),
                        message,
                    })?;
                    // A scalar replaces a table of the same name from an include, and
                    // vice versa.
                    self.values
                        .retain(|k, _| !k.starts_with(&format!("{full}.")));
                    self.values.insert(full, (value, origin));
                }
                toml_edit::Item::ArrayOfTables(a) => {
                    let mut arr = Vec::new();
                    for t in a.iter() {
                        let doc = t.to_string();
                        let parsed: toml::Table =
                            toml::from_str(&doc).map_err(|e| LaunchError::Field {
                                origin: origin.to_string(),
                                field: full.clone(),
                                message: e.message().to_string(),
                            })?;
                        arr.push(toml::Value::Table(parsed));
                    }
                    self.values.insert(full, (toml::Value::Array(arr), origin));
                }
                toml_edit::Item::None => {}
            }
        }
        Ok(())
    }

    /// Applies a `--set key.path=value` override. The value is read as TOML (`3`, `true`,
    /// `"text"`, `[1, 2]`); anything that is not valid TOML is taken as a string.
    pub fn set(&mut self, arg: &str) -> Result<(), LaunchError> {
        let (key, raw) = arg.split_once('=').ok_or_else(|| LaunchError::Override {
            arg: arg.into(),
            message: "expected key.path=value".into(),
        })?;
        let key = key.trim();
        let valid_key = !key.is_empty()
            && key.split('.').all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !valid_key {
            return Err(LaunchError::Override {
                arg: arg.into(),
                message: format!("'{key}' is not a dotted key path like policy.kind"),
            });
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|t| t.get("v").cloned())
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        self.values
            .retain(|k, _| !k.starts_with(&format!("{key}.")));
        let origin = Origin::Override(arg.to_string());
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                self.values
                    .insert(format!("{key}.{k}"), (v, origin.clone()));
            }
        } else {
            self.values.insert(key.to_string(), (value, origin));
        }
        Ok(())
    }

    /// Where a key (or the closest enclosing table) came from.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        let mut k = key;
        loop {
            if let Some((_, o)) = self.values.get(k) {
                return Some(o);
            }
            if let Some(o) = self.tables.get(k) {
                return Some(o);
            }
            // A child of this key (e.g. the first field of a table).
            if let Some((_, (_, o))) = self
                .values
                .range(format!("{k}.")..)
                .next()
                .filter(|(c, _)| c.starts_with(&format!("{k}.")))
            {
                return Some(o);
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return None,
            }
        }
    }

    /// The origin of a key as text, for error messages.
    pub fn origin_text(&self, key: &str) -> String {
        match self.origin(key) {
            Some(o) => o.to_string(),
            None => match self.files.first() {
                Some(f) => f.display().to_string(),
                None => "launch file".into(),
            },
        }
    }

    /// Resolves a path value against its origin's directory (lexically: `launch/../runs`
    /// becomes `runs`).
    pub fn resolve_path(&self, key: &str, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let joined = match self.origin(key) {
            Some(o) => o.base_dir().join(path),
            None => path.to_path_buf(),
        };
        normalize(&joined)
    }

    /// The merged values as one TOML table.
    pub fn to_table(&self) -> toml::Table {
        let mut root = toml::Table::new();
        for (key, (value, _)) in &self.values {
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or_default();
            let mut t = &mut root;
            for p in parts {
                let entry = t
                    .entry(p.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if !entry.is_table() {
                    *entry = toml::Value::Table(toml::Table::new());
                }
                t = entry.as_table_mut().expect("just made a table");
            }
            t.insert(last.to_string(), value.clone());
        }
        root
    }

    /// Deserialises the merged values; errors name the origin and the field.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, LaunchError> {
        let table = self.to_table();
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().trim().to_string();
            // serde reports an unknown field at its parent; name the field itself.
            let field = match message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                Some(name) if path == "." || path.is_empty() => name.to_string(),
                Some(name) => format!("{path}.{name}"),
                None => path,
            };
            let field = if field == "." {
                "(top level)".into()
            } else {
                field
            };
            LaunchError::Field {
                origin: self.origin_text(&field),
                field,
                message,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        world: World,
        #[serde(default)]
        policy: Policy,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct World {
        width: u32,
        #[serde(default)]
        scene: String,
    }
    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Policy {
        kind: String,
        seed: u64,
        log: Option<PathBuf>,
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn includes_override_and_set() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "base.toml",
            "[world]\nwidth = 300\nscene = \"FloorPlan1\"\n[policy]\nkind = \"random\"\nseed = 4\n",
        );
        let main = write(
            d.path(),
            "main.toml",
            "include = [\"base.toml\"]\n\n[world]\nwidth = 800\n",
        );
        let mut l = Layered::load(&main).unwrap();
        l.set("policy.kind=oracle").unwrap();
        l.set("policy.log=runs/x.jsonl").unwrap();
        let c: Conf = l.deserialize().unwrap();
        assert_eq!(c.world.width, 800);
        assert_eq!(c.world.scene, "FloorPlan1");
        assert_eq!(c.policy.kind, "oracle");
        assert_eq!(c.policy.seed, 4);
        assert_eq!(
            l.origin_text("world.width"),
            format!("{}:4", main.display())
        );
        assert!(l.origin_text("world.scene").ends_with("base.toml:3"));
        assert_eq!(l.origin_text("policy.kind"), "--set policy.kind=oracle");
        // Paths resolve against the file that set them; --set paths against the cwd.
        assert_eq!(
            l.resolve_path("world.scene", Path::new("x")),
            d.path().join("x")
        );
        assert_eq!(
            l.resolve_path("policy.log", Path::new("runs/x.jsonl")),
            PathBuf::from("runs/x.jsonl")
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let d = tempfile::tempdir().unwrap();
        let bad_type = write(d.path(), "a.toml", "[world]\n\nwidth = \"wide\"\n");
        let e = Layered::load(&bad_type)
            .unwrap()
            .deserialize::<Conf>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.toml:3") && e.contains("world.width"), "{e}");

        let unknown = write(d.path(), "b.toml", "[world]\nwidth = 1\nheigth = 2\n");
        let e = Layered::load(&unknown)
            .unwrap()
            .deserialize::<Conf>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.toml:3") && e.contains("world.heigth") && e.contains("unknown field"),
            "{e}"
        );

        let syntax = write(d.path(), "c.toml", "[world]\nwidth = = 3\n");
        let e = Layered::load(&syntax).unwrap_err().to_string();
        assert!(e.contains("c.toml:2:"), "{e}");

        write(d.path(), "d.toml", "include = [\"e.toml\"]\n");
        let e_file = write(d.path(), "e.toml", "include = [\"d.toml\"]\n");
        let e = Layered::load(&e_file).unwrap_err().to_string();
        assert!(e.contains("include cycle"), "{e}");

        let missing = write(d.path(), "f.toml", "include = [\"nope.toml\"]\n");
        let e = Layered::load(&missing).unwrap_err().to_string();
        assert!(e.contains("f.toml:1") && e.contains("nope.toml"), "{e}");

        let ok = write(d.path(), "g.toml", "[world]\nwidth = 1\n");
        let mut l = Layered::load(&ok).unwrap();
        assert!(
            l.set("policy.kind")
                .unwrap_err()
                .to_string()
                .contains("key.path=value")
        );
        assert!(l.set("bad key=1").is_err());
        l.set("world.width=-5").unwrap();
        let e = l.deserialize::<Conf>().unwrap_err().to_string();
        assert!(
            e.contains("--set world.width=-5") && e.contains("world.width"),
            "{e}"
        );

        let missing_section = write(d.path(), "h.toml", "[policy]\nkind = \"x\"\n");
        let e = Layered::load(&missing_section)
            .unwrap()
            .deserialize::<Conf>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `world`"), "{e}");
    }
}
