//! Where objects live: `s3://bucket/key` or a local path (`file:///abs/path`, or a plain path).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A string that names no location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(String);

/// An object, or a prefix that objects are named under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A file or directory.
    File(PathBuf),
    /// An S3 object or prefix.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key (a prefix when it is empty or ends with `/`).
        key: String,
    },
}

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(LocationError(format!(
                    "{s:?} names no bucket; write s3://bucket/key"
                )));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Location::File(PathBuf::from(path)));
        }
        if s.is_empty() {
            return Err(LocationError(
                "an empty location; give s3://bucket/key or a path".into(),
            ));
        }
        if s.contains("://") {
            return Err(LocationError(format!(
                "{s:?}: only s3:// and file:// locations (or plain paths) are supported"
            )));
        }
        Ok(Location::File(PathBuf::from(s)))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "file://{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

impl Location {
    /// The object `name` under this prefix.
    pub fn join(&self, name: &str) -> Location {
        match self {
            Location::File(p) => Location::File(p.join(name)),
            Location::S3 { bucket, key } => {
                let key = if key.is_empty() || key.ends_with('/') {
                    format!("{key}{name}")
                } else {
                    format!("{key}/{name}")
                };
                Location::S3 {
                    bucket: bucket.clone(),
                    key,
                }
            }
        }
    }

    /// The last component of the name.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            Location::File(p) => p.file_name().and_then(|n| n.to_str()),
            Location::S3 { key, .. } => key.rsplit('/').next().filter(|n| !n.is_empty()),
        }
    }

    /// A default inference id for an input: its file name without the extension.
    pub fn stem(&self) -> Option<String> {
        let name = self.file_name()?;
        let stem = Path::new(name).file_stem()?.to_str()?;
        (!stem.is_empty()).then(|| stem.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_joins() {
        let l: Location = "s3://b/in/x.json".parse().unwrap();
        assert_eq!(
            l,
            Location::S3 {
                bucket: "b".into(),
                key: "in/x.json".into()
            }
        );
        assert_eq!(l.stem().as_deref(), Some("x"));
        let out: Location = "s3://b/out".parse().unwrap();
        assert_eq!(out.join("x.out").to_string(), "s3://b/out/x.out");
        let root: Location = "s3://b".parse().unwrap();
        assert_eq!(root.join("x.out").to_string(), "s3://b/x.out");
        let f: Location = "file:///tmp/a/".parse().unwrap();
        assert_eq!(f.join("y.out"), Location::File("/tmp/a/y.out".into()));
        assert_eq!(
            "rel/dir".parse::<Location>().unwrap(),
            Location::File("rel/dir".into())
        );
        assert!("s3:///key".parse::<Location>().is_err());
        assert!("http://x/y".parse::<Location>().is_err());
    }
}
