//! The schemas scimlet serves (RFC 7643 §4 and §8.7), as data.
//!
//! One table drives input validation, attribute-name canonicalisation,
//! filters, PATCH, projection and the `/Schemas` discovery document, so what
//! is advertised is exactly what is enforced.

/// URN of the core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the enterprise User extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// URN of the core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the ListResponse message.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// URN of the PatchOp message.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// SCIM data types (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Unicode string.
    String,
    /// `true` or `false`.
    Boolean,
    /// Real number.
    Decimal,
    /// Whole number.
    Integer,
    /// RFC 3339 timestamp.
    DateTime,
    /// Base64 bytes.
    Binary,
    /// URI reference.
    Reference,
    /// Object of sub-attributes.
    Complex,
}

impl Type {
    /// Wire name used in `/Schemas`.
    pub fn as_str(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Decimal => "decimal",
            Type::Integer => "integer",
            Type::DateTime => "dateTime",
            Type::Binary => "binary",
            Type::Reference => "reference",
            Type::Complex => "complex",
        }
    }
}

/// Who may write an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service provider only.
    ReadOnly,
    /// Freely writable.
    ReadWrite,
    /// Written once, at creation (or when still unset).
    Immutable,
    /// Writable, never returned.
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, even when excluded.
    Always,
    /// Never.
    Never,
    /// Unless excluded.
    Default,
    /// Only when asked for by `attributes`.
    Request,
}

/// One attribute definition.
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// Canonical name (matching is case-insensitive).
    pub name: &'static str,
    /// Data type.
    pub ty: Type,
    /// Whether the attribute holds a list.
    pub multi_valued: bool,
    /// Whether a resource must carry it.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Whether the value must be unique (`server`) or not (`none`).
    pub unique: bool,
    /// Sub-attributes of a complex attribute.
    pub sub_attributes: &'static [Attribute],
    /// Suggested values (RFC 7643 `canonicalValues`).
    pub canonical_values: &'static [&'static str],
    /// For references: what they point to.
    pub reference_types: &'static [&'static str],
    /// Human-readable description, published in `/Schemas`.
    pub description: &'static str,
}

const fn attr(name: &'static str, ty: Type, description: &'static str) -> Attribute {
    Attribute {
        name,
        ty,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        sub_attributes: &[],
        canonical_values: &[],
        reference_types: &[],
        description,
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, Type::String, description)
}

const fn complex(name: &'static str, subs: &'static [Attribute], description: &'static str) -> Attribute {
    let mut a = attr(name, Type::Complex, description);
    a.sub_attributes = subs;
    a
}

impl Attribute {
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self.returned = Returned::Never;
        self
    }
    const fn always(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }
    const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }

    /// The sub-attribute called `name` (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema: an id (URN) and its attributes.
#[derive(Debug)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// Description published in `/Schemas`.
    pub description: &'static str,
    /// Top-level attributes.
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// The attribute called `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A resource type: endpoint, base schema and extensions (RFC 7643 §6).
#[derive(Debug)]
pub struct ResourceType {
    /// `User` or `Group`.
    pub name: &'static str,
    /// Endpoint relative to the base URL.
    pub endpoint: &'static str,
    /// Description.
    pub description: &'static str,
    /// Base schema.
    pub schema: &'static Schema,
    /// Extension schemas and whether each is required.
    pub extensions: &'static [(&'static Schema, bool)],
}

impl ResourceType {
    /// The extension schema with this URN (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions.iter().map(|(s, _)| *s).find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Every schema of this resource type, base first.
    pub fn schemas(&self) -> impl Iterator<Item = &'static Schema> + '_ {
        std::iter::once(self.schema).chain(self.extensions.iter().map(|(s, _)| *s))
    }
}

/// Attributes common to every resource (RFC 7643 §3.1), in output order.
pub static COMMON: &[Attribute] = &[
    string("id", "Unique identifier of the resource, issued by the service provider.")
        .case_exact()
        .read_only()
        .always()
        .unique(),
    string("externalId", "Identifier of the resource as defined by the provisioning client.").case_exact(),
    complex(
        "meta",
        &[
            string("resourceType", "Name of the resource type.").case_exact().read_only(),
            attr("created", Type::DateTime, "When the resource was added.").read_only(),
            attr("lastModified", Type::DateTime, "When the resource was last changed.").read_only(),
            attr("location", Type::Reference, "URI of the resource.").case_exact().read_only().refs(&["uri"]),
            string("version", "Version (ETag) of the resource.").case_exact().read_only(),
        ],
        "Resource metadata.",
    )
    .read_only(),
];

macro_rules! multi_value {
    ($value:expr, $types:expr) => {
        &[
            $value,
            string("display", "Human-readable name, primarily used for display purposes."),
            string("type", "A label indicating the attribute's function.").canonical($types),
            attr("primary", Type::Boolean, "Whether this is the primary value."),
        ]
    };
}

/// The core User schema (RFC 7643 §4.1), less `roles`: role bindings are
/// native to the platform and SCIM never touches them.
pub static USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: &[
        string(
            "userName",
            "Unique identifier for the User, typically used to sign in. Unique per account, case-insensitive.",
        )
        .required()
        .unique(),
        complex(
            "name",
            &[
                string("formatted", "The full name, formatted for display."),
                string("familyName", "The family name."),
                string("givenName", "The given name."),
                string("middleName", "The middle name(s)."),
                string("honorificPrefix", "The honorific prefix(es), e.g. 'Ms.'."),
                string("honorificSuffix", "The honorific suffix(es), e.g. 'III'."),
            ],
            "The components of the user's real name.",
        ),
        string("displayName", "The name of the User, suitable for display to end-users."),
        string("nickName", "The casual way to address the user."),
        attr("profileUrl", Type::Reference, "A URI of the user's online profile.").refs(&["external"]),
        string("title", "The user's title, such as 'Vice President'."),
        string("userType", "The relationship between the organization and the user."),
        string("preferredLanguage", "The user's preferred written or spoken language."),
        string("locale", "The user's default location, e.g. 'en-US'."),
        string("timezone", "The user's time zone in IANA format, e.g. 'Europe/Paris'."),
        attr(
            "active",
            Type::Boolean,
            "The user's administrative status; inactive users keep their data but get no access.",
        ),
        string("password", "The user's cleartext password; accepted and never stored or returned.").write_only(),
        complex(
            "emails",
            multi_value!(string("value", "Email address."), &["work", "home", "other"]),
            "Email addresses for the user.",
        )
        .multi(),
        complex(
            "phoneNumbers",
            multi_value!(string("value", "Phone number."), &["work", "home", "mobile", "fax", "pager", "other"]),
            "Phone numbers for the user.",
        )
        .multi(),
        complex(
            "ims",
            multi_value!(
                string("value", "Instant messaging address."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
            ),
            "Instant messaging addresses for the user.",
        )
        .multi(),
        complex(
            "photos",
            multi_value!(
                attr("value", Type::Reference, "URL of a photo of the user.").refs(&["external"]),
                &["photo", "thumbnail"]
            ),
            "URLs of photos of the user.",
        )
        .multi(),
        complex(
            "addresses",
            &[
                string("formatted", "The full mailing address, formatted for display."),
                string("streetAddress", "The full street address component."),
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string("country", "The country name component."),
                string("type", "A label indicating the attribute's function.").canonical(&["work", "home", "other"]),
                attr("primary", Type::Boolean, "Whether this is the primary address."),
            ],
            "A physical mailing address for this user.",
        )
        .multi(),
        complex(
            "groups",
            &[
                string("value", "The identifier of the user's group.").read_only(),
                attr("$ref", Type::Reference, "The URI of the group.").read_only().refs(&["Group"]),
                string("display", "The group's displayName.").read_only(),
                string("type", "How the membership was derived.").read_only().canonical(&["direct", "indirect"]),
            ],
            "The groups the user belongs to; managed through the Group resource.",
        )
        .multi()
        .read_only(),
        complex(
            "entitlements",
            multi_value!(string("value", "The value of an entitlement."), &[]),
            "Entitlements of the user.",
        )
        .multi(),
        complex(
            "x509Certificates",
            multi_value!(attr("value", Type::Binary, "The value of an X.509 certificate."), &[]),
            "X.509 certificates of the user.",
        )
        .multi(),
    ],
};

/// The enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            &[
                string("value", "The id of the SCIM resource representing the user's manager."),
                attr("$ref", Type::Reference, "The URI of the manager's resource.").refs(&["User"]),
                string("displayName", "The displayName of the user's manager.").read_only(),
            ],
            "The user's manager.",
        ),
    ],
};

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: &[
        string("displayName", "A human-readable name for the Group; unique per account.").required().unique(),
        complex(
            "members",
            &[
                string("value", "Identifier of the member.").immutable(),
                attr("$ref", Type::Reference, "The URI of the member resource.").immutable().refs(&["User"]),
                string("type", "The type of the member.").immutable().canonical(&["User"]),
            ],
            "The members of the Group (users).",
        )
        .multi(),
    ],
};

/// The User resource type.
pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA,
    extensions: &[(&ENTERPRISE_SCHEMA, false)],
};

/// The Group resource type.
pub static GROUP_TYPE: ResourceType =
    ResourceType { name: "Group", endpoint: "/Groups", description: "Group", schema: &GROUP_SCHEMA, extensions: &[] };

/// Every resource type served.
pub static RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

/// A resolved attribute reference: which schema and which attribute (and
/// optionally which sub-attribute) a name or path denotes.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The schema URN holding the attribute.
    pub schema: &'static Schema,
    /// Whether the schema is an extension (values live under its URN key).
    pub extension: bool,
    /// The top-level attribute.
    pub attribute: &'static Attribute,
    /// The sub-attribute, if the reference names one.
    pub sub: Option<&'static Attribute>,
}

impl Resolved {
    /// The definition the reference finally points at.
    pub fn target(&self) -> &'static Attribute {
        self.sub.unwrap_or(self.attribute)
    }
}

/// Resolves an attribute reference such as `userName`, `name.givenName`,
/// `emails.value`, `meta.lastModified` or a URN-qualified
/// `urn:…:enterprise:2.0:User:manager.value` (RFC 7644 §3.10),
/// case-insensitively.
pub fn resolve(rt: &ResourceType, reference: &str) -> Option<Resolved> {
    let (schema, extension, rest) = split_urn(rt, reference)?;
    let (top, sub) = match rest.split_once('.') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    let attribute = schema
        .attribute(top)
        .or_else(|| if extension { None } else { COMMON.iter().find(|a| a.name.eq_ignore_ascii_case(top)) })?;
    let sub = match sub {
        Some(s) => Some(attribute.sub(s)?),
        None => None,
    };
    Some(Resolved { schema, extension, attribute, sub })
}

/// Splits an optional schema URN prefix off an attribute reference.
fn split_urn<'a>(rt: &ResourceType, reference: &'a str) -> Option<(&'static Schema, bool, &'a str)> {
    if reference.len() > 4 && reference.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        for (i, schema) in rt.schemas().enumerate() {
            let id = schema.id;
            if reference.len() > id.len()
                && reference.is_char_boundary(id.len())
                && reference[..id.len()].eq_ignore_ascii_case(id)
                && reference.as_bytes()[id.len()] == b':'
            {
                return Some((schema, i > 0, &reference[id.len() + 1..]));
            }
        }
        return None;
    }
    Some((rt.schema, false, reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_case_insensitively() {
        let r = resolve(&USER_TYPE, "NAME.givenname").unwrap();
        assert_eq!((r.attribute.name, r.target().name), ("name", "givenName"));
        let r =
            resolve(&USER_TYPE, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert!(r.extension);
        assert_eq!(r.target().name, "value");
        let r = resolve(&USER_TYPE, "urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert_eq!(r.attribute.name, "userName");
        assert_eq!(resolve(&USER_TYPE, "meta.lastModified").unwrap().target().ty, Type::DateTime);
        assert!(resolve(&USER_TYPE, "nope").is_none());
        assert!(resolve(&USER_TYPE, "name.nope").is_none());
        assert!(resolve(&GROUP_TYPE, "members.value").is_some());
    }
}
