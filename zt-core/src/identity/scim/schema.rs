//! The SCIM schemas zt serves (RFC 7643 section 8.7): the core User and Group and the enterprise
//! User extension, as data. One definition drives everything that depends on it: the `/Schemas`
//! and `/ResourceTypes` documents, what a request may write, what a response returns, and how a
//! filter or a sort compares each attribute.

use serde_json::{Map, Value, json};

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The list response message.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The error message.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The PATCH request message.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The `.search` request message.
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// An attribute's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// Text.
    String,
    /// `true` or `false` (also accepted as the strings `"True"` and `"False"`, as Entra ID
    /// sends them).
    Boolean,
    /// A whole number.
    Integer,
    /// An RFC 3339 time, kept as text.
    DateTime,
    /// A URI or a resource's location, kept as text.
    Reference,
    /// An object of sub-attributes.
    Complex,
}

impl AttrType {
    fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// Who may write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// The service sets it; a client's value is ignored.
    ReadOnly,
    /// Anyone may write it.
    ReadWrite,
    /// Set once, then never changed.
    Immutable,
}

/// When an attribute is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes` or `excludedAttributes` say.
    Always,
    /// Unless excluded.
    Default,
}

/// One attribute of a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// Its name (attribute names compare without case).
    pub name: &'static str,
    /// Its type.
    pub ty: AttrType,
    /// Whether it holds a list of values.
    pub multi: bool,
    /// Whether a resource must have it.
    pub required: bool,
    /// Whether text compares with its case.
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Whether no two resources of the tenant may share it.
    pub unique: bool,
    /// The sub-attributes of a complex attribute.
    pub sub: &'static [Attribute],
    /// The values a client is expected to use (`type` of an e-mail address, say).
    pub canonical: &'static [&'static str],
    /// What a reference may point to.
    pub reference_types: &'static [&'static str],
    /// What it is.
    pub description: &'static str,
}

impl Attribute {
    const fn of(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Attribute {
            name,
            ty,
            multi: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            unique: false,
            sub: &[],
            canonical: &[],
            reference_types: &[],
            description,
        }
    }
    const fn text(name: &'static str, description: &'static str) -> Self {
        Self::of(name, AttrType::String, description)
    }
    const fn complex(
        name: &'static str,
        sub: &'static [Attribute],
        description: &'static str,
    ) -> Self {
        let mut a = Self::of(name, AttrType::Complex, description);
        a.sub = sub;
        a
    }
    const fn reference(
        name: &'static str,
        to: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        let mut a = Self::of(name, AttrType::Reference, description);
        a.reference_types = to;
        a
    }
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
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
    const fn always(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }
    const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical = values;
        self
    }

    /// The sub-attribute called `name` (any case).
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    fn to_json(self) -> Value {
        let mut out = json!({
            "name": self.name,
            "type": self.ty.name(),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Default => "default",
            },
            "uniqueness": if self.unique { "server" } else { "none" },
        });
        if let Value::Object(map) = &mut out {
            if !self.sub.is_empty() {
                map.insert(
                    "subAttributes".into(),
                    self.sub.iter().map(|a| a.to_json()).collect(),
                );
            }
            if !self.canonical.is_empty() {
                map.insert("canonicalValues".into(), json!(self.canonical));
            }
            if self.ty == AttrType::Reference {
                map.insert("referenceTypes".into(), json!(self.reference_types));
            }
        }
        out
    }
}

/// A schema: a URI and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// Its URI.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// What it describes.
    pub description: &'static str,
    /// Its attributes.
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// The attribute called `name` (any case).
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The schema's `/Schemas` document, its location under `base`.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(|a| a.to_json()).collect::<Vec<_>>(),
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{}", self.id) },
        })
    }
}

const TYPED_VALUE: [Attribute; 4] = [
    Attribute::text("value", "The value."),
    Attribute::text("display", "A name for the value, for display."),
    Attribute::text("type", "What kind of value it is.").canonical(&["work", "home", "other"]),
    Attribute::of(
        "primary",
        AttrType::Boolean,
        "Whether this is the preferred value; at most one is.",
    ),
];

const NAME: [Attribute; 6] = [
    Attribute::text("formatted", "The full name, formatted for display."),
    Attribute::text("familyName", "The family name."),
    Attribute::text("givenName", "The given name."),
    Attribute::text("middleName", "The middle name."),
    Attribute::text("honorificPrefix", "The honorific prefix, such as Ms."),
    Attribute::text("honorificSuffix", "The honorific suffix, such as III."),
];

const USER_ATTRIBUTES: [Attribute; 13] = [
    Attribute::text(
        "userName",
        "The name the identity provider knows the user by, unique in the workspace (any case).",
    )
    .required()
    .unique(),
    Attribute::complex("name", &NAME, "The parts of the user's name."),
    Attribute::text("displayName", "The name shown to others."),
    Attribute::text("nickName", "The casual name."),
    Attribute::text("title", "The job title."),
    Attribute::text(
        "userType",
        "The relation to the organisation, such as Employee.",
    ),
    Attribute::text("preferredLanguage", "The preferred language (RFC 7231)."),
    Attribute::text("locale", "The locale, for formatting."),
    Attribute::text("timezone", "The time zone (IANA name)."),
    Attribute::of(
        "active",
        AttrType::Boolean,
        "Whether the user may sign in; false ends every session.",
    ),
    Attribute::complex(
        "emails",
        &TYPED_VALUE,
        "E-mail addresses; the primary one is the user's address in zt.",
    )
    .multi(),
    Attribute::complex("phoneNumbers", &TYPED_VALUE, "Phone numbers.").multi(),
    Attribute::reference("profileUrl", &["external"], "A page about the user."),
];

/// The core User schema.
pub const USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "A user of the workspace.",
    attributes: &USER_ATTRIBUTES,
};

const MANAGER: [Attribute; 2] = [
    Attribute::text("value", "The manager's id."),
    Attribute::reference("$ref", &["User"], "The manager's location."),
];

const ENTERPRISE_ATTRIBUTES: [Attribute; 6] = [
    Attribute::text("employeeNumber", "The employee number."),
    Attribute::text("costCenter", "The cost centre."),
    Attribute::text("organization", "The organisation."),
    Attribute::text("division", "The division."),
    Attribute::text("department", "The department."),
    Attribute::complex("manager", &MANAGER, "The user's manager."),
];

/// The enterprise User extension.
pub const ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise attributes of a user.",
    attributes: &ENTERPRISE_ATTRIBUTES,
};

const MEMBER: [Attribute; 3] = [
    Attribute::text("value", "The member's id.").immutable(),
    Attribute::reference("$ref", &["User"], "The member's location.").immutable(),
    Attribute::text("type", "The kind of member.")
        .immutable()
        .canonical(&["User"]),
];

const GROUP_ATTRIBUTES: [Attribute; 2] = [
    Attribute::text(
        "displayName",
        "The group's name, unique in the workspace (any case).",
    )
    .required()
    .unique(),
    Attribute::complex(
        "members",
        &MEMBER,
        "The members the identity provider gave the group.",
    )
    .multi(),
];

/// The core Group schema.
pub const GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "A group of users.",
    attributes: &GROUP_ATTRIBUTES,
};

const META: [Attribute; 5] = [
    Attribute::text("resourceType", "The resource's type.").read_only(),
    Attribute::of("created", AttrType::DateTime, "When it was created.").read_only(),
    Attribute::of("lastModified", AttrType::DateTime, "When it last changed.").read_only(),
    Attribute::reference("location", &["uri"], "Where it is.").read_only(),
    Attribute::text("version", "Its version (the ETag).")
        .read_only()
        .exact(),
];

/// The attributes every resource has (RFC 7643 section 3.1).
pub const COMMON: [Attribute; 3] = [
    Attribute::text("id", "The service's id of the resource.")
        .read_only()
        .always()
        .exact()
        .unique(),
    Attribute::text("externalId", "The identity provider's id of the resource.").exact(),
    Attribute::complex("meta", &META, "The resource's metadata.").read_only(),
];

/// A kind of resource: its endpoint, its schema and its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// Its name (`User`, `Group`).
    pub name: &'static str,
    /// Its endpoint under the service's base (`/Users`).
    pub endpoint: &'static str,
    /// Its core schema.
    pub schema: &'static Schema,
    /// The extensions it may carry (none is required).
    pub extensions: &'static [&'static Schema],
}

/// Users, with the enterprise extension.
pub const USERS: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    schema: &USER,
    extensions: &[&ENTERPRISE_USER],
};

/// Groups.
pub const GROUPS: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    schema: &GROUP,
    extensions: &[],
};

/// Every resource type served.
pub const RESOURCE_TYPES: [&ResourceType; 2] = [&USERS, &GROUPS];

impl ResourceType {
    /// The extension with URI `uri` (any case).
    pub fn extension(&self, uri: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(uri))
    }

    /// The attribute a path names: a common attribute, one of the core schema's, or, under an
    /// extension's URI, one of the extension's. Returns the schema it belongs to (`None` for
    /// the core schema and the common attributes).
    pub fn resolve(
        &self,
        uri: Option<&str>,
        name: &str,
    ) -> Option<(Option<&'static Schema>, &'static Attribute)> {
        match uri {
            Some(uri) if uri.eq_ignore_ascii_case(self.schema.id) => {
                self.schema.attribute(name).map(|a| (None, a))
            }
            Some(uri) => {
                let ext = self.extension(uri)?;
                ext.attribute(name).map(|a| (Some(ext), a))
            }
            None => COMMON
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| self.schema.attribute(name))
                .map(|a| (None, a)),
        }
    }

    /// The `/ResourceTypes` document, its location under `base`.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.schema.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter()
                .map(|s| json!({ "schema": s.id, "required": false }))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", self.name),
            },
        })
    }
}

/// Every schema served.
pub const SCHEMAS: [&Schema; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

/// The `/ServiceProviderConfig` document: what the service supports, its limits, and how a
/// client authenticates (a bearer API key).
pub fn service_provider_config(base: &str, max_results: usize, max_operations: usize) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "schemas".into(),
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]),
    );
    doc.insert(
        "documentationUri".into(),
        json!("https://example.invalid/zt/docs/scim"),
    );
    doc.insert("patch".into(), json!({ "supported": true }));
    doc.insert(
        "bulk".into(),
        json!({ "supported": false, "maxOperations": max_operations, "maxPayloadSize": 0 }),
    );
    doc.insert(
        "filter".into(),
        json!({ "supported": true, "maxResults": max_results }),
    );
    doc.insert("changePassword".into(), json!({ "supported": false }));
    doc.insert("sort".into(), json!({ "supported": true }));
    doc.insert("etag".into(), json!({ "supported": true }));
    doc.insert(
        "authenticationSchemes".into(),
        json!([{
            "type": "oauthbearertoken",
            "name": "API key",
            "description": "A workspace's SCIM API key, as a bearer token.",
            "primary": true,
        }]),
    );
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        }),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn paths_resolve_in_their_schema() {
        let (s, a) = USERS.resolve(None, "USERNAME").unwrap();
        assert!(s.is_none() && a.required && a.unique && !a.case_exact);
        let (s, a) = USERS.resolve(None, "externalId").unwrap();
        assert!(s.is_none() && a.case_exact);
        let (s, a) = USERS.resolve(Some(ENTERPRISE_SCHEMA), "manager").unwrap();
        assert_eq!(s.unwrap().id, ENTERPRISE_SCHEMA);
        assert!(a.sub_attribute("$REF").is_some());
        assert!(USERS.resolve(Some(ENTERPRISE_SCHEMA), "userName").is_none());
        assert!(USERS.resolve(Some("urn:x"), "userName").is_none());
        assert!(GROUPS.resolve(None, "emails").is_none());
    }

    #[test]
    fn documents_describe_the_schemas() {
        let doc = USER.to_json("https://h/scim/v2");
        let names: Vec<&str> = doc["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"userName") && names.contains(&"emails"));
        assert_eq!(doc["attributes"][0]["uniqueness"], "server");
        let rt = USERS.to_json("https://h/scim/v2");
        assert_eq!(rt["schemaExtensions"][0]["schema"], ENTERPRISE_SCHEMA);
        let spc = service_provider_config("https://h/scim/v2", 200, 0);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["filter"]["maxResults"], 200);
    }
}
