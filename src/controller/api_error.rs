//! Metric and log labels for Kubernetes API failures, so a dashboard tells a conflict from an
//! outage instead of one `KubernetesApi` bucket.

/// A short CamelCase kind of a Kubernetes client error.
pub fn kind(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) => match status.code {
            400 => "BadRequest",
            401 | 403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            500..=599 => "ApiServerError",
            _ => "ApiError",
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            "ApiUnreachable"
        }
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => "Decode",
        kube::Error::Auth(_) => "Auth",
        _ => "KubernetesApi",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..Default::default()
        }))
    }

    #[test]
    fn api_errors_are_told_apart_by_code() {
        assert_eq!(kind(&api(409)), "Conflict");
        assert_eq!(kind(&api(404)), "NotFound");
        assert_eq!(kind(&api(503)), "ApiServerError");
        let decode = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(kind(&kube::Error::SerdeError(decode)), "Decode");
    }
}
