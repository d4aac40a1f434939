//! Zoho data centres and their hosts.

use std::fmt;
use std::str::FromStr;

use bulk_common::Error;

/// A Zoho data centre: where an account lives, which fixes both the Creator API host and the
/// accounts (OAuth) host.
///
/// ```
/// use zoho_bulk::DataCentre;
/// let dc: DataCentre = "eu".parse()?;
/// assert_eq!(dc.creator_url(), "https://creator.zoho.eu");
/// assert_eq!(dc.accounts_url(), "https://accounts.zoho.eu");
/// # Ok::<(), zoho_bulk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataCentre {
    /// United States (`zoho.com`).
    Us,
    /// Europe (`zoho.eu`).
    Eu,
    /// India (`zoho.in`).
    In,
    /// Australia (`zoho.com.au`).
    Au,
    /// Japan (`zoho.jp`).
    Jp,
    /// Canada (`zohocloud.ca`).
    Ca,
    /// Saudi Arabia (`zoho.sa`).
    Sa,
    /// China (`zoho.com.cn`).
    Cn,
}

impl DataCentre {
    /// Every data centre.
    pub const ALL: [DataCentre; 8] = [
        DataCentre::Us,
        DataCentre::Eu,
        DataCentre::In,
        DataCentre::Au,
        DataCentre::Jp,
        DataCentre::Ca,
        DataCentre::Sa,
        DataCentre::Cn,
    ];

    /// The domain suffix (`zoho.eu`, `zohocloud.ca`, ...).
    pub fn domain(self) -> &'static str {
        match self {
            DataCentre::Us => "zoho.com",
            DataCentre::Eu => "zoho.eu",
            DataCentre::In => "zoho.in",
            DataCentre::Au => "zoho.com.au",
            DataCentre::Jp => "zoho.jp",
            DataCentre::Ca => "zohocloud.ca",
            DataCentre::Sa => "zoho.sa",
            DataCentre::Cn => "zoho.com.cn",
        }
    }

    /// The Creator API base URL (`https://creator.zoho.eu`). Never derived from the `api_domain`
    /// of a token reply, which points at `zohoapis` hosts that do not serve Bulk Read.
    pub fn creator_url(self) -> String {
        format!("https://creator.{}", self.domain())
    }

    /// The `zohoapis` base URL (`https://www.zohoapis.eu`), the host of the v2.1 Bulk Read API
    /// ([`ApiVersion::V2_1`](crate::ApiVersion::V2_1)). Canada's is `www.zohoapis.ca` (as in
    /// the zoho-creator-sdk's data-centre table); Saudi Arabia's and China's follow the domain
    /// (assumed: the v2.1 pages name only the US and EU hosts).
    pub fn api_url(self) -> String {
        let domain = match self {
            DataCentre::Ca => "ca",
            other => other.domain().trim_start_matches("zoho."),
        };
        format!("https://www.zohoapis.{domain}")
    }

    /// The accounts (OAuth) base URL (`https://accounts.zoho.eu`).
    pub fn accounts_url(self) -> String {
        format!("https://accounts.{}", self.domain())
    }
}

impl fmt::Display for DataCentre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.domain())
    }
}

impl FromStr for DataCentre {
    type Err = Error;

    /// Accepts the short names (`us`, `eu`, `in`, `au`, `jp`, `ca`, `sa`, `cn`), the domain
    /// endings (`com`, `eu`, `com.au`, `com.cn`, ...) and whole domains (`zoho.eu`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let key = s.trim().to_ascii_lowercase();
        let key = key
            .trim_start_matches('.')
            .trim_start_matches("zohocloud.")
            .trim_start_matches("zoho.");
        Ok(match key {
            "us" | "com" => DataCentre::Us,
            "eu" => DataCentre::Eu,
            "in" => DataCentre::In,
            "au" | "com.au" => DataCentre::Au,
            "jp" => DataCentre::Jp,
            "ca" => DataCentre::Ca,
            "sa" => DataCentre::Sa,
            "cn" | "com.cn" => DataCentre::Cn,
            _ => {
                return Err(Error::config(format!(
                    "unknown Zoho data centre {s:?}; use one of us, eu, in, au, jp, ca, sa, cn"
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_centre_round_trips_and_has_matching_hosts() {
        for dc in DataCentre::ALL {
            assert_eq!(dc.domain().parse::<DataCentre>().ok(), Some(dc));
            assert!(dc.creator_url().ends_with(dc.domain()));
            assert!(dc.accounts_url().ends_with(dc.domain()));
        }
        assert_eq!("com.au".parse::<DataCentre>().ok(), Some(DataCentre::Au));
        assert_eq!(
            DataCentre::Ca.accounts_url(),
            "https://accounts.zohocloud.ca"
        );
        assert_eq!(DataCentre::Cn.creator_url(), "https://creator.zoho.com.cn");
        assert_eq!(DataCentre::Eu.api_url(), "https://www.zohoapis.eu");
        assert_eq!(DataCentre::Us.api_url(), "https://www.zohoapis.com");
        assert_eq!(DataCentre::Au.api_url(), "https://www.zohoapis.com.au");
        assert_eq!(DataCentre::Ca.api_url(), "https://www.zohoapis.ca");
        for (text, want) in [
            ("v2", ApiVersion::V2),
            ("2.1", ApiVersion::V2_1),
            (" V2.1 ", ApiVersion::V2_1),
        ] {
            assert_eq!(text.parse::<ApiVersion>().ok(), Some(want), "{text}");
        }
        assert_eq!(
            ApiVersion::V2_1.base_url(DataCentre::Eu),
            "https://www.zohoapis.eu"
        );
        assert_eq!(
            ApiVersion::V2.base_url(DataCentre::Eu),
            "https://creator.zoho.eu"
        );
        let err = "v3".parse::<ApiVersion>().unwrap_err();
        assert!(err.to_string().contains("use v2 or v2.1"), "{err}");
        let err = "mars".parse::<DataCentre>().unwrap_err();
        assert!(err.to_string().contains("unknown Zoho data centre"));
    }
}

/// The form of the Bulk Read API: the same calls and bodies under two URL layouts.
///
/// | Form | Host | Path prefix | Source |
/// |---|---|---|---|
/// | [`V2`](Self::V2) (default) | `creator.zoho.<dc>` | `/api/bulk/v2/<owner>/<app>/report/<report>/read` | seed 001; Zoho's v2 bulk pages |
/// | [`V2_1`](Self::V2_1) | `www.zohoapis.<dc>` | `/creator/v2.1/bulk/<owner>/<app>/report/<report>/read` | Zoho's v2.1 bulk pages |
///
/// v2 is the default because seed 001 and every v2 page agree on it; Zoho's v2.1 pages
/// describe the same request and reply fields. Select v2.1 with
/// [`ClientBuilder::api_version`](crate::ClientBuilder::api_version) or `ZOHO_API_VERSION=v2.1`.
///
/// ```
/// use zoho_bulk::ApiVersion;
/// assert_eq!("v2.1".parse::<ApiVersion>()?, ApiVersion::V2_1);
/// assert_eq!(ApiVersion::default(), ApiVersion::V2);
/// # Ok::<(), zoho_bulk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// `https://creator.zoho.<dc>/api/bulk/v2/…`.
    #[default]
    V2,
    /// `https://www.zohoapis.<dc>/creator/v2.1/bulk/…`.
    V2_1,
}

impl ApiVersion {
    /// The path before `/<owner>/<app>/report/<report>/read`.
    pub fn path_prefix(self) -> &'static str {
        match self {
            ApiVersion::V2 => "/api/bulk/v2",
            ApiVersion::V2_1 => "/creator/v2.1/bulk",
        }
    }

    /// The API host of this form in `dc`.
    pub fn base_url(self, dc: DataCentre) -> String {
        match self {
            ApiVersion::V2 => dc.creator_url(),
            ApiVersion::V2_1 => dc.api_url(),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V2_1 => "v2.1",
        })
    }
}

impl FromStr for ApiVersion {
    type Err = Error;

    /// `v2` or `v2.1` (the `v` is optional).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().trim_start_matches('v') {
            "2" => Ok(ApiVersion::V2),
            "2.1" => Ok(ApiVersion::V2_1),
            _ => Err(Error::config(format!(
                "unknown Zoho Bulk API version {s:?}; use v2 or v2.1"
            ))),
        }
    }
}
