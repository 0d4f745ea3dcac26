//! Object storage behind one small trait (cargo feature `storage`): the local filesystem for
//! local runs, S3 through aws-sdk-s3 (any S3 API: `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_S3` point
//! it elsewhere, with path-style addressing). The async handler reads inputs and writes results
//! through it; the Lambda front-end's asynchronous routes store request bodies and read results.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::location::Location;

/// A boxed future (the trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An object read from storage.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its bytes.
    pub body: Bytes,
    /// Its `Content-Type` (S3 metadata, or guessed from a file's extension).
    pub content_type: Option<String>,
}

/// Why storage failed. `NotFound` and `TooLarge` are the input's fault (the job fails for
/// good); `Unavailable` is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such object.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The object is larger than the limit.
    #[error("{location} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The object.
        location: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else (network, permissions, throttling).
    #[error("{0}")]
    Unavailable(String),
}

/// Reads and writes objects.
pub trait ObjectStore: Send + Sync {
    /// Reads an object of at most `limit` bytes.
    fn get<'a>(
        &'a self,
        at: &'a Location,
        limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>>;
    /// Writes an object (atomically: readers see the old state or the whole new object).
    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Whether an object exists: `None` if not, else its content type if known.
    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>>;
    /// The objects directly under a prefix (a folder's files, an S3 prefix's keys), sorted.
    fn list<'a>(
        &'a self,
        prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>>;
}

/// What [`ObjectStore::head`] finds: `None` for no object, else its content type if known.
pub type Head = Option<Option<String>>;

/// The content type a file name suggests: the request formats (.json, .jsonl, .csv) and the
/// image files an image task takes raw (.png, .jpg/.jpeg, .gif, .bmp, .tif/.tiff, .webp).
pub fn content_type_of(name: &str) -> Option<&'static str> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" => Some("application/json"),
        "jsonl" | "jsonlines" | "ndjson" => Some("application/jsonlines"),
        "csv" => Some("text/csv"),
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "bmp" => Some("image/bmp"),
        "tif" | "tiff" => Some("image/tiff"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

fn within_limit(at: &Location, size: u64, limit: u64) -> Result<(), StorageError> {
    if size > limit {
        return Err(StorageError::TooLarge {
            location: at.to_string(),
            size,
            limit,
        });
    }
    Ok(())
}

/// Local files.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalStore;

fn local_path(at: &Location) -> Result<&Path, StorageError> {
    match at {
        Location::File(p) => Ok(p),
        other => Err(StorageError::Unavailable(format!(
            "{other} is not a local path"
        ))),
    }
}

fn io_error(at: &Location, e: &std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound(at.to_string())
    } else {
        StorageError::Unavailable(format!("{at}: {e}"))
    }
}

impl ObjectStore for LocalStore {
    fn get<'a>(
        &'a self,
        at: &'a Location,
        limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(async move {
            let path = local_path(at)?;
            let size = tokio::fs::metadata(path)
                .await
                .map_err(|e| io_error(at, &e))?
                .len();
            within_limit(at, size, limit)?;
            let body = tokio::fs::read(path).await.map_err(|e| io_error(at, &e))?;
            Ok(Object {
                body: body.into(),
                content_type: at.file_name().and_then(content_type_of).map(str::to_owned),
            })
        })
    }

    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: Bytes,
        _content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let path = local_path(at)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| io_error(at, &e))?;
            }
            let tmp = path.with_extension(format!("partial-{}", std::process::id()));
            tokio::fs::write(&tmp, &body)
                .await
                .map_err(|e| io_error(at, &e))?;
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(|e| io_error(at, &e))
        })
    }

    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>> {
        Box::pin(async move {
            let exists = tokio::fs::try_exists(local_path(at)?)
                .await
                .map_err(|e| io_error(at, &e))?;
            Ok(exists.then(|| at.file_name().and_then(content_type_of).map(str::to_owned)))
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>> {
        Box::pin(async move {
            let dir = local_path(prefix)?;
            let mut entries = tokio::fs::read_dir(dir)
                .await
                .map_err(|e| io_error(prefix, &e))?;
            let mut out = Vec::new();
            while let Some(e) = entries
                .next_entry()
                .await
                .map_err(|e| io_error(prefix, &e))?
            {
                let hidden = e.file_name().to_string_lossy().starts_with('.');
                let is_file = e.file_type().await.is_ok_and(|t| t.is_file());
                if is_file && !hidden {
                    out.push(Location::File(e.path()));
                }
            }
            out.sort_by_key(|a| a.to_string());
            Ok(out)
        })
    }
}

/// S3 (or any S3 API).
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

fn sdk_error<E, R>(at: &Location, e: &aws_sdk_s3::error::SdkError<E, R>) -> StorageError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StorageError::Unavailable(format!(
        "{at}: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}

fn s3_parts(at: &Location) -> Result<(&str, &str), StorageError> {
    match at {
        Location::S3 { bucket, key } => Ok((bucket, key)),
        other => Err(StorageError::Unavailable(format!(
            "{other} is not an S3 location"
        ))),
    }
}

impl S3Store {
    /// A client from the standard AWS configuration (environment, profile, instance role);
    /// path-style addressing when an endpoint URL is configured (local S3 APIs such as moto).
    pub async fn from_env() -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(custom_endpoint)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }
}

impl ObjectStore for S3Store {
    fn get<'a>(
        &'a self,
        at: &'a Location,
        limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(async move {
            let (bucket, key) = s3_parts(at)?;
            let out = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                        StorageError::NotFound(at.to_string())
                    } else {
                        sdk_error(at, &e)
                    }
                })?;
            let size = out.content_length().unwrap_or(0).max(0) as u64;
            within_limit(at, size, limit)?;
            let content_type = out.content_type().map(str::to_owned);
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| StorageError::Unavailable(format!("{at}: {e}")))?
                .into_bytes();
            Ok(Object { body, content_type })
        })
    }

    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let (bucket, key) = s3_parts(at)?;
            self.client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type(content_type)
                .body(body.into())
                .send()
                .await
                .map_err(|e| sdk_error(at, &e))?;
            Ok(())
        })
    }

    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>> {
        Box::pin(async move {
            let (bucket, key) = s3_parts(at)?;
            match self
                .client
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
            {
                Ok(o) => Ok(Some(o.content_type().map(str::to_owned))),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
                Err(e) => Err(sdk_error(at, &e)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>> {
        Box::pin(async move {
            let (bucket, key) = s3_parts(prefix)?;
            let prefix_key = if key.is_empty() || key.ends_with('/') {
                key.to_owned()
            } else {
                format!("{key}/")
            };
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&prefix_key)
                    .delimiter("/")
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error(prefix, &e))?;
                for o in page.contents() {
                    if let Some(k) = o.key().filter(|k| !k.ends_with('/')) {
                        out.push(Location::S3 {
                            bucket: bucket.to_owned(),
                            key: k.to_owned(),
                        });
                    }
                }
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            out.sort_by_key(|a| a.to_string());
            Ok(out)
        })
    }
}

/// Local files and S3 behind one store, chosen by each location's scheme; the S3 client is
/// made on first use.
#[derive(Debug, Default)]
pub struct Stores {
    local: LocalStore,
    s3: OnceCell<S3Store>,
}

impl Stores {
    async fn pick(&self, at: &Location) -> &dyn ObjectStore {
        match at {
            Location::File(_) => &self.local,
            Location::S3 { .. } => self.s3.get_or_init(S3Store::from_env).await,
        }
    }
}

impl ObjectStore for Stores {
    fn get<'a>(
        &'a self,
        at: &'a Location,
        limit: u64,
    ) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(async move { self.pick(at).await.get(at, limit).await })
    }

    fn put<'a>(
        &'a self,
        at: &'a Location,
        body: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move { self.pick(at).await.put(at, body, content_type).await })
    }

    fn head<'a>(&'a self, at: &'a Location) -> BoxFuture<'a, Result<Head, StorageError>> {
        Box::pin(async move { self.pick(at).await.head(at).await })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<Location>, StorageError>> {
        Box::pin(async move { self.pick(prefix).await.list(prefix).await })
    }
}

#[cfg(test)]
mod tests {
    use super::content_type_of;

    #[test]
    fn file_names_suggest_request_and_image_types() {
        for (name, want) in [
            ("a.json", Some("application/json")),
            ("a.JSONL", Some("application/jsonlines")),
            ("a.csv", Some("text/csv")),
            ("cat.png", Some("image/png")),
            ("cat.JPG", Some("image/jpeg")),
            ("cat.jpeg", Some("image/jpeg")),
            ("cat.gif", Some("image/gif")),
            ("cat.bmp", Some("image/bmp")),
            ("cat.tif", Some("image/tiff")),
            ("cat.tiff", Some("image/tiff")),
            ("cat.webp", Some("image/webp")),
            ("cat.out", None),
            ("cat", None),
        ] {
            assert_eq!(content_type_of(name), want, "{name}");
        }
    }
}
