//! What the Lambda front-end's test files share.

/// A SageMaker Runtime client configuration pointed at a local stand-in (test credentials, one
/// region); callers add their timeouts and retry policy.
pub(crate) fn client_config(url: &str) -> aws_sdk_sagemakerruntime::config::Builder {
    aws_sdk_sagemakerruntime::Config::builder()
        .behavior_version(aws_sdk_sagemakerruntime::config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_sdk_sagemakerruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sagemakerruntime::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
}
