//! Every method and signal of Libervia 0.9's D-Bus bridge: name, in- and out-signature,
//! argument names, and for the methods perchd implements, the handler; sorted by name
//! (the dispatch searches them). Why a table: the introspection that dbus-python
//! marshals from, the check of each call's signature and the choice of the code that
//! answers all come from one row, so they cannot disagree, and adding a method is
//! adding a handler to its row. A row without a handler answers `MethodNotRegistered`.
//!
//! Derived from the interface data of Debian's Libervia 0.9 (0.9.0~hg3993): the core
//! interface and its argument names from its generated bridge
//! (`sat/bridge/dbus_bridge.py`), the plugin interface from the introspection of a
//! running 0.9 backend with Debian's plugin set, which names no plugin arguments.
//! Change the signatures only to follow a new Libervia interface; the counts are
//! tested (`dispatch::tests`, and over D-Bus in the backend tests).

use std::future::Future;
use std::pin::Pin;

use zbus::message::Message;

use super::context::Lib;
use super::handlers::{
    blocking, blog, bookmarks, cache, files, identity, messages, misc, muc, params, profiles,
    pubsub, roster,
};
use super::reply::Answer;

/// A handler's answer, still to come.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// The code that answers a method: the call's context and message, its answer. Made
/// from a handler function by `h!` (arguments decoded into the handler's argument
/// type) or `h0!` (no arguments).
pub type Handler = for<'a> fn(&'a Lib, &'a Message) -> Pending<'a>;

/// What a row says beyond the wire signatures: the argument names (introspection
/// only) and the handler, if perchd implements the method.
#[derive(Clone, Copy)]
pub struct Serve {
    pub arg_names: &'static [&'static str],
    pub handler: Option<Handler>,
}

impl Serve {
    /// A method perchd does not implement, without argument names.
    pub const NONE: Self = Self::none(&[]);

    /// A method perchd does not implement.
    pub const fn none(arg_names: &'static [&'static str]) -> Self {
        Self {
            arg_names,
            handler: None,
        }
    }

    /// A method answered by `handler`.
    pub const fn by(arg_names: &'static [&'static str], handler: Handler) -> Self {
        Self {
            arg_names,
            handler: Some(handler),
        }
    }
}

/// A handler `async fn(&Lib, Args) -> Answer` as a [`Handler`]: the body is decoded
/// into `Args` (a tuple in Libervia's order, or one type), the type the handler
/// names; a body that does not decode is `InvalidArgs`.
macro_rules! h {
    ($f:path) => {{
        fn handler<'a>(lib: &'a Lib, msg: &'a Message) -> Pending<'a> {
            Box::pin(async move { $f(lib, super::reply::args(msg)?).await })
        }
        handler as Handler
    }};
}

/// A handler `async fn(&Lib) -> Answer` of a method without arguments as a
/// [`Handler`].
macro_rules! h0 {
    ($f:path) => {{
        fn handler<'a>(lib: &'a Lib, _msg: &'a Message) -> Pending<'a> {
            Box::pin($f(lib))
        }
        handler as Handler
    }};
}

/// One method: `(name, in-signature, out-signature, argument names and handler)`.
pub type MethodRow = (&'static str, &'static str, &'static str, Serve);
/// One signal: `(name, signature, argument names)`.
pub type SignalRow = (&'static str, &'static str, &'static [&'static str]);

pub const CORE_METHODS: &[MethodRow] = &[
    (
        "actionsGet",
        "s",
        "a(a{ss}si)",
        Serve::by(&["profile_key"], h!(profiles::actions_get)),
    ),
    (
        "addContact",
        "ss",
        "",
        Serve::by(&["entity_jid", "profile_key"], h!(roster::add)),
    ),
    (
        "asyncDeleteProfile",
        "s",
        "",
        Serve::by(&["profile"], h!(profiles::delete)),
    ),
    (
        "asyncGetParamA",
        "sssis",
        "s",
        Serve::by(
            &[
                "name",
                "category",
                "attribute",
                "security_limit",
                "profile_key",
            ],
            h!(params::get_async),
        ),
    ),
    (
        "asyncGetParamsValuesFromCategory",
        "sisss",
        "a{ss}",
        Serve::by(
            &["category", "security_limit", "app", "extra", "profile_key"],
            h!(params::category_values),
        ),
    ),
    (
        "connect",
        "ssa{ss}",
        "b",
        Serve::by(
            &["profile_key", "password", "options"],
            h!(profiles::connect),
        ),
    ),
    (
        "contactGet",
        "ss",
        "(a{ss}as)",
        Serve::by(&["arg_0", "profile_key"], h!(roster::contact_get)),
    ),
    (
        "delContact",
        "ss",
        "",
        Serve::by(&["entity_jid", "profile_key"], h!(roster::delete)),
    ),
    (
        "devicesInfosGet",
        "ss",
        "s",
        Serve::none(&["bare_jid", "profile_key"]),
    ),
    (
        "discoFindByFeatures",
        "asa(ss)bbbbbs",
        "(a{sa(sss)}a{sa(sss)}a{sa(sss)})",
        Serve::none(&[
            "namespaces",
            "identities",
            "bare_jid",
            "service",
            "roster",
            "own_jid",
            "local_device",
            "profile_key",
        ]),
    ),
    (
        "discoInfos",
        "ssbs",
        "(asa(sss)a{sa(a{ss}as)})",
        Serve::by(
            &["entity_jid", "node", "use_cache", "profile_key"],
            h!(misc::disco_info),
        ),
    ),
    (
        "discoItems",
        "ssbs",
        "a(sss)",
        Serve::by(
            &["entity_jid", "node", "use_cache", "profile_key"],
            h!(misc::disco_items),
        ),
    ),
    (
        "disconnect",
        "s",
        "",
        Serve::by(&["profile_key"], h!(profiles::disconnect)),
    ),
    (
        "encryptionNamespaceGet",
        "s",
        "s",
        Serve::by(&["arg_0"], h!(messages::encryption_namespace)),
    ),
    (
        "encryptionPluginsGet",
        "",
        "s",
        Serve::by(&[], h0!(messages::encryption_plugins)),
    ),
    (
        "encryptionTrustUIGet",
        "sss",
        "s",
        Serve::by(
            &["to_jid", "namespace", "profile_key"],
            h!(messages::encryption_trust_ui),
        ),
    ),
    (
        "getConfig",
        "ss",
        "s",
        Serve::by(&["section", "name"], h!(misc::config)),
    ),
    (
        "getContacts",
        "s",
        "a(sa{ss}as)",
        Serve::by(&["profile_key"], h!(roster::contacts)),
    ),
    (
        "getContactsFromGroup",
        "ss",
        "as",
        Serve::by(&["group", "profile_key"], h!(roster::from_group)),
    ),
    (
        "getEntitiesData",
        "asass",
        "a{sa{ss}}",
        Serve::by(&["jids", "keys", "profile"], h!(misc::entities_data)),
    ),
    (
        "getEntityData",
        "sass",
        "a{ss}",
        Serve::by(&["jid", "keys", "profile"], h!(misc::entity_data)),
    ),
    (
        "getFeatures",
        "s",
        "a{sa{ss}}",
        Serve::by(&["profile_key"], h!(misc::features)),
    ),
    (
        "getMainResource",
        "ss",
        "s",
        Serve::by(&["contact_jid", "profile_key"], h!(roster::main_resource)),
    ),
    (
        "getParamA",
        "ssss",
        "s",
        Serve::by(
            &["name", "category", "attribute", "profile_key"],
            h!(params::get),
        ),
    ),
    (
        "getParamsCategories",
        "",
        "as",
        Serve::by(&[], h0!(params::categories)),
    ),
    (
        "getParamsUI",
        "isss",
        "s",
        Serve::by(
            &["security_limit", "app", "extra", "profile_key"],
            h!(params::ui),
        ),
    ),
    (
        "getPresenceStatuses",
        "s",
        "a{sa{s(sia{ss})}}",
        Serve::by(&["profile_key"], h!(roster::statuses)),
    ),
    ("getReady", "", "", Serve::by(&[], h0!(misc::ready))),
    (
        "getVersion",
        "",
        "s",
        Serve::by(&[], h0!(misc::get_version)),
    ),
    (
        "getWaitingSub",
        "s",
        "a{ss}",
        Serve::by(&["profile_key"], h!(roster::waiting)),
    ),
    (
        "historyGet",
        "ssiba{ss}s",
        "a(sdssa{ss}a{ss}ss)",
        Serve::by(
            &[
                "from_jid", "to_jid", "limit", "between", "filters", "profile",
            ],
            h!(messages::history_get),
        ),
    ),
    ("imageCheck", "s", "s", Serve::none(&["arg_0"])),
    (
        "imageConvert",
        "ssss",
        "s",
        Serve::none(&["source", "dest", "arg_2", "extra"]),
    ),
    (
        "imageGeneratePreview",
        "ss",
        "s",
        Serve::none(&["image_path", "profile_key"]),
    ),
    (
        "imageResize",
        "sii",
        "s",
        Serve::none(&["image_path", "width", "height"]),
    ),
    (
        "isConnected",
        "s",
        "b",
        Serve::by(&["profile_key"], h!(profiles::is_connected)),
    ),
    (
        "launchAction",
        "sa{ss}s",
        "a{ss}",
        Serve::by(
            &["callback_id", "data", "profile_key"],
            h!(profiles::launch),
        ),
    ),
    ("loadParamsTemplate", "s", "b", Serve::none(&["filename"])),
    (
        "menuHelpGet",
        "ss",
        "s",
        Serve::none(&["menu_id", "language"]),
    ),
    (
        "menuLaunch",
        "sasa{ss}is",
        "a{ss}",
        Serve::none(&["menu_type", "path", "data", "security_limit", "profile_key"]),
    ),
    (
        "menusGet",
        "si",
        "a(ssasasa{ss})",
        Serve::by(&["language", "security_limit"], h!(misc::menus)),
    ),
    (
        "messageEncryptionGet",
        "ss",
        "s",
        Serve::by(&["to_jid", "profile_key"], h!(messages::encryption_get)),
    ),
    (
        "messageEncryptionStart",
        "ssbs",
        "",
        Serve::by(
            &["to_jid", "namespace", "replace", "profile_key"],
            h!(messages::encryption_start),
        ),
    ),
    (
        "messageEncryptionStop",
        "ss",
        "",
        Serve::by(&["to_jid", "profile_key"], h!(messages::encryption_stop)),
    ),
    (
        "messageSend",
        "sa{ss}a{ss}sss",
        "",
        Serve::by(
            &[
                "to_jid",
                "message",
                "subject",
                "mess_type",
                "extra",
                "profile_key",
            ],
            h!(messages::send),
        ),
    ),
    (
        "namespacesGet",
        "",
        "a{ss}",
        Serve::by(&[], h0!(misc::namespaces)),
    ),
    (
        "paramsRegisterApp",
        "sis",
        "",
        Serve::none(&["xml", "security_limit", "app"]),
    ),
    (
        "privateDataDelete",
        "sss",
        "",
        Serve::none(&["namespace", "key", "arg_2"]),
    ),
    (
        "privateDataGet",
        "sss",
        "s",
        Serve::none(&["namespace", "key", "profile_key"]),
    ),
    (
        "privateDataSet",
        "ssss",
        "",
        Serve::none(&["namespace", "key", "data", "profile_key"]),
    ),
    (
        "profileCreate",
        "sss",
        "",
        Serve::by(&["profile", "password", "component"], h!(profiles::create)),
    ),
    (
        "profileIsSessionStarted",
        "s",
        "b",
        Serve::by(&["profile_key"], h!(profiles::is_session_started)),
    ),
    (
        "profileNameGet",
        "s",
        "s",
        Serve::by(&["profile_key"], h!(profiles::name_get)),
    ),
    (
        "profileSetDefault",
        "s",
        "",
        Serve::by(&["profile"], h!(profiles::set_default)),
    ),
    (
        "profileStartSession",
        "ss",
        "b",
        Serve::by(&["password", "profile_key"], h!(profiles::session_start)),
    ),
    (
        "profilesListGet",
        "bb",
        "as",
        Serve::by(&["clients", "components"], h!(profiles::list_get)),
    ),
    (
        "progressGet",
        "ss",
        "a{ss}",
        Serve::by(&["id", "profile"], h!(files::progress_get)),
    ),
    (
        "progressGetAll",
        "s",
        "a{sa{sa{ss}}}",
        Serve::none(&["profile"]),
    ),
    (
        "progressGetAllMetadata",
        "s",
        "a{sa{sa{ss}}}",
        Serve::none(&["profile"]),
    ),
    (
        "rosterResync",
        "s",
        "",
        Serve::by(&["profile_key"], h!(roster::resync)),
    ),
    ("saveParamsTemplate", "s", "b", Serve::none(&["filename"])),
    (
        "sessionInfosGet",
        "s",
        "a{ss}",
        Serve::by(&["profile_key"], h!(profiles::session_infos_get)),
    ),
    (
        "setParam",
        "sssis",
        "",
        Serve::by(
            &["name", "value", "category", "security_limit", "profile_key"],
            h!(params::set),
        ),
    ),
    (
        "setPresence",
        "ssa{ss}s",
        "",
        Serve::by(
            &["to_jid", "show", "statuses", "profile_key"],
            h!(roster::set_presence),
        ),
    ),
    (
        "subscription",
        "sss",
        "",
        Serve::by(
            &["sub_type", "entity", "profile_key"],
            h!(roster::subscription),
        ),
    ),
    (
        "updateContact",
        "ssass",
        "",
        Serve::by(
            &["entity_jid", "name", "groups", "profile_key"],
            h!(roster::update),
        ),
    ),
];

pub const CORE_SIGNALS: &[SignalRow] = &[
    ("_debug", "sa{ss}s", &["action", "params", "profile"]),
    (
        "actionNew",
        "a{ss}sis",
        &["action_data", "id", "security_limit", "profile"],
    ),
    ("connected", "ss", &["jid_s", "profile"]),
    ("contactDeleted", "ss", &["entity_jid", "profile"]),
    ("disconnected", "s", &["profile"]),
    (
        "entityDataUpdated",
        "ssss",
        &["jid", "name", "value", "profile"],
    ),
    (
        "messageEncryptionStarted",
        "sss",
        &["to_jid", "encryption_data", "profile_key"],
    ),
    (
        "messageEncryptionStopped",
        "sa{ss}s",
        &["to_jid", "encryption_data", "profile_key"],
    ),
    (
        "messageNew",
        "sdssa{ss}a{ss}sss",
        &[
            "uid",
            "timestamp",
            "from_jid",
            "to_jid",
            "message",
            "subject",
            "mess_type",
            "extra",
            "profile",
        ],
    ),
    (
        "newContact",
        "sa{ss}ass",
        &["contact_jid", "attributes", "groups", "profile"],
    ),
    (
        "paramUpdate",
        "ssss",
        &["name", "value", "category", "profile"],
    ),
    (
        "presenceUpdate",
        "ssia{ss}s",
        &["entity_jid", "show", "priority", "statuses", "profile"],
    ),
    ("progressError", "sss", &["id", "error", "profile"]),
    (
        "progressFinished",
        "sa{ss}s",
        &["id", "metadata", "profile"],
    ),
    ("progressStarted", "sa{ss}s", &["id", "metadata", "profile"]),
    ("subscribe", "sss", &["sub_type", "entity_jid", "profile"]),
];

pub const PLUGIN_METHODS: &[MethodRow] = &[
    ("APSend", "sss", "", Serve::NONE),
    ("FISAffiliationsGet", "ssss", "a{ss}", Serve::NONE),
    ("FISAffiliationsSet", "sssa{ss}s", "", Serve::NONE),
    ("FISConfigurationGet", "ssss", "a{ss}", Serve::NONE),
    ("FISConfigurationSet", "sssa{ss}s", "", Serve::NONE),
    ("FISCreateDir", "sssa{ss}s", "", Serve::NONE),
    ("FISInvite", "ssssssss", "", Serve::NONE),
    ("FISList", "ssa{ss}s", "aa{ss}", Serve::NONE),
    ("FISLocalSharesGet", "s", "as", Serve::NONE),
    ("FISSharePath", "ssss", "s", Serve::NONE),
    ("FISUnsharePath", "ss", "", Serve::NONE),
    ("MAMGet", "sss", "(a(sdssa{ss}a{ss}ss)ss)", Serve::NONE),
    ("PEPSend", "sa{ss}s", "", Serve::NONE),
    ("URIFind", "sas", "a{sa{ss}}", Serve::NONE),
    (
        "adHocDBusAddAuto",
        "sasasasasasass",
        "(sa(sss))",
        Serve::NONE,
    ),
    ("adHocList", "ss", "s", Serve::NONE),
    ("adHocRemotesGet", "s", "a(sss)", Serve::NONE),
    ("adHocRun", "sss", "s", Serve::NONE),
    ("adHocSequence", "ssss", "s", Serve::NONE),
    ("applicationExposedGet", "sss", "s", Serve::NONE),
    ("applicationStart", "ss", "", Serve::NONE),
    ("applicationStop", "sss", "", Serve::NONE),
    ("applicationsList", "as", "as", Serve::NONE),
    ("asyncConnectWithXMPPCredentials", "ss", "b", Serve::NONE),
    ("avatarGet", "sbs", "s", Serve::by(&[], h!(identity::get))),
    ("avatarSet", "sss", "", Serve::by(&[], h!(identity::set))),
    (
        "blockingBlock",
        "ass",
        "",
        Serve::by(&[], h!(blocking::block)),
    ),
    (
        "blockingList",
        "s",
        "as",
        Serve::by(&[], h!(blocking::list)),
    ),
    (
        "blockingUnblock",
        "ass",
        "",
        Serve::by(&[], h!(blocking::unblock)),
    ),
    ("blogImport", "ssa{ss}sss", "s", Serve::NONE),
    ("blogImportDesc", "s", "(ss)", Serve::NONE),
    ("blogImportList", "", "a(ss)", Serve::NONE),
    ("bobGetFile", "sss", "s", Serve::NONE),
    (
        "bookmarksAdd",
        "ssa{ss}ss",
        "",
        Serve::by(&[], h!(bookmarks::add)),
    ),
    (
        "bookmarksList",
        "sss",
        "a{sa{sa{ss}}}",
        Serve::by(&[], h!(bookmarks::list)),
    ),
    (
        "bookmarksRemove",
        "ssss",
        "",
        Serve::by(&[], h!(bookmarks::remove)),
    ),
    (
        "chatStateComposing",
        "ss",
        "",
        Serve::by(&[], h!(messages::composing)),
    ),
    ("debugFakeSignal", "sss", "", Serve::NONE),
    ("eventCreate", "sssss", "", Serve::NONE),
    ("eventInvite", "sssss", "", Serve::NONE),
    ("eventInviteByEmail", "ssssassssssss", "", Serve::NONE),
    ("eventInviteeGet", "sssasss", "s", Serve::NONE),
    ("eventInviteeSet", "sssss", "", Serve::NONE),
    ("eventInviteesList", "sss", "a{sa{ss}}", Serve::NONE),
    ("eventModify", "sssss", "", Serve::NONE),
    ("eventsGet", "ssasss", "s", Serve::NONE),
    ("exportCommand", "sasasa{ss}s", "", Serve::NONE),
    (
        "fileDownload",
        "ssss",
        "s",
        Serve::by(&[], h!(files::download)),
    ),
    ("fileDownloadComplete", "ssss", "s", Serve::NONE),
    ("fileHTTPUpload", "sssbs", "", Serve::NONE),
    ("fileHTTPUploadGetSlot", "sisss", "(ssaa{ss})", Serve::NONE),
    ("fileJingleRequest", "sssssa{ss}s", "s", Serve::NONE),
    ("fileJingleSend", "ssssa{ss}s", "", Serve::NONE),
    ("fileSend", "ssssss", "a{ss}", Serve::NONE),
    ("fileSharingDelete", "ssss", "", Serve::NONE),
    (
        "fileUpload",
        "sssss",
        "a{ss}",
        Serve::by(&[], h!(files::upload)),
    ),
    ("findGateways", "ss", "s", Serve::NONE),
    ("forumTopicCreate", "ssa{ss}s", "", Serve::NONE),
    ("forumTopicsGet", "ssa{ss}s", "(aa{ss}s)", Serve::NONE),
    ("forumsGet", "ssss", "s", Serve::NONE),
    ("forumsSet", "sssss", "", Serve::NONE),
    ("gatewayRegister", "ss", "s", Serve::NONE),
    ("getAccountDialogUI", "s", "s", Serve::NONE),
    ("getNewAccountDomain", "", "s", Serve::NONE),
    (
        "getSoftwareVersion",
        "ss",
        "(sss)",
        Serve::by(&[], h!(misc::software_version)),
    ),
    ("identitiesBaseGet", "s", "s", Serve::NONE),
    ("identitiesGet", "asass", "s", Serve::NONE),
    (
        "identityGet",
        "sasbs",
        "s",
        Serve::by(&[], h!(identity::identity_get)),
    ),
    ("identitySet", "ss", "", Serve::NONE),
    ("inBandAccountNew", "ssssi", "", Serve::NONE),
    ("inBandPasswordChange", "ss", "", Serve::NONE),
    ("inBandRegister", "ss", "", Serve::NONE),
    ("inBandUnregister", "ss", "", Serve::NONE),
    ("interestRetract", "sss", "", Serve::NONE),
    ("interestsList", "ssss", "aa{ss}", Serve::NONE),
    ("interestsRegisterFileSharing", "sssssss", "", Serve::NONE),
    (
        "invitationCreate",
        "sasssssssssa{ss}s",
        "a{ss}",
        Serve::NONE,
    ),
    ("invitationDelete", "s", "", Serve::NONE),
    ("invitationGet", "s", "a{ss}", Serve::NONE),
    ("invitationList", "s", "a{sa{ss}}", Serve::NONE),
    ("invitationModify", "sa{ss}b", "", Serve::NONE),
    ("invitationSimpleCreate", "sssss", "a{ss}", Serve::NONE),
    (
        "inviteMUC",
        "ssa{ss}s",
        "",
        Serve::by(&[], h!(bookmarks::invite)),
    ),
    ("listDeleteItem", "sssbs", "", Serve::NONE),
    ("listGet", "ssiassss", "s", Serve::NONE),
    ("listSchemaGet", "sss", "s", Serve::NONE),
    ("listSet", "ssa{sas}ssss", "s", Serve::NONE),
    ("listTemplateCreate", "ssss", "(ss)", Serve::NONE),
    ("listTemplateGet", "sss", "s", Serve::NONE),
    ("listTemplatesNamesGet", "ss", "s", Serve::NONE),
    ("listsList", "sss", "s", Serve::NONE),
    ("mbGet", "ssiasss", "s", Serve::by(&[], h!(blog::get))),
    ("mbGetFromMany", "sasia{ss}s", "s", Serve::NONE),
    (
        "mbGetFromManyRTResult",
        "ss",
        "(ua(sssasa{ss}))",
        Serve::NONE,
    ),
    (
        "mbGetFromManyWithComments",
        "sasiia{ss}a{ss}s",
        "s",
        Serve::NONE,
    ),
    (
        "mbGetFromManyWithCommentsRTResult",
        "ss",
        "(ua(sssa(sa(sssasa{ss}))a{ss}))",
        Serve::NONE,
    ),
    ("mbIsCommentNode", "s", "b", Serve::NONE),
    ("mbPreview", "ssss", "s", Serve::NONE),
    ("mbRename", "sssss", "", Serve::NONE),
    ("mbRepeat", "sssss", "s", Serve::NONE),
    ("mbRetract", "ssss", "", Serve::by(&[], h!(blog::retract))),
    ("mbSend", "ssss", "s", Serve::by(&[], h!(blog::send))),
    ("mbSetAccess", "ss", "", Serve::NONE),
    ("mbSubscribeToMany", "sass", "s", Serve::NONE),
    ("mergeRequestParseData", "ss", "aa{ss}", Serve::NONE),
    ("mergeRequestSet", "ssssa{sas}ssss", "s", Serve::NONE),
    ("mergeRequestsGet", "ssiassss", "s", Serve::NONE),
    ("mergeRequestsImport", "ssssa{ss}s", "", Serve::NONE),
    ("mergeRequestsSchemaGet", "sss", "s", Serve::NONE),
    (
        "messageReactionsSet",
        "ssas",
        "",
        Serve::by(&[], h!(messages::reactions_set)),
    ),
    (
        "messageRetract",
        "ss",
        "",
        Serve::by(&[], h!(messages::retract)),
    ),
    (
        "mucConfigureRoom",
        "ss",
        "s",
        Serve::by(&[], h!(muc::configure_room)),
    ),
    (
        "mucGetDefaultService",
        "",
        "s",
        Serve::by(&[], h0!(muc::default_service)),
    ),
    (
        "mucGetRoomsJoined",
        "s",
        "a(sa{sa{ss}}ssas)",
        Serve::by(&[], h!(muc::rooms_joined)),
    ),
    ("mucGetService", "ss", "s", Serve::by(&[], h!(muc::service))),
    (
        "mucGetUniqueRoomName",
        "ss",
        "s",
        Serve::by(&[], h!(muc::unique_name)),
    ),
    (
        "mucJoin",
        "ssa{ss}s",
        "(bsa{sa{ss}}ssass)",
        Serve::by(&[], h!(muc::join)),
    ),
    ("mucLeave", "ss", "", Serve::by(&[], h!(muc::leave))),
    ("mucNick", "sss", "", Serve::by(&[], h!(muc::nick))),
    ("mucNickGet", "ss", "s", Serve::by(&[], h!(muc::nick_get))),
    (
        "mucOccupantsGet",
        "ss",
        "a{sa{ss}}",
        Serve::by(&[], h!(muc::occupants)),
    ),
    ("mucSubject", "sss", "", Serve::by(&[], h!(muc::subject))),
    ("ping", "ss", "d", Serve::by(&[], h!(misc::ping))),
    ("psAdminItemsSend", "ssasss", "as", Serve::NONE),
    (
        "psAffiliationsGet",
        "sss",
        "a{ss}",
        Serve::by(&[], h!(pubsub::affiliations_get)),
    ),
    ("psAttachmentsGet", "sssasss", "(ss)", Serve::NONE),
    ("psAttachmentsSet", "ss", "", Serve::NONE),
    (
        "psCacheGet",
        "ssiassss",
        "s",
        Serve::by(&[], h!(cache::get)),
    ),
    ("psCachePurge", "s", "", Serve::by(&[], h!(cache::purge))),
    ("psCacheReset", "", "", Serve::by(&[], h0!(cache::reset))),
    ("psCacheSearch", "s", "s", Serve::by(&[], h!(cache::search))),
    ("psCacheSync", "sss", "", Serve::by(&[], h!(cache::sync))),
    ("psGetFromMany", "a(ss)iss", "s", Serve::NONE),
    (
        "psGetFromManyRTResult",
        "ss",
        "(ua(sssasa{ss}))",
        Serve::NONE,
    ),
    ("psGetSubscribeRTResult", "ss", "(ua(sss))", Serve::NONE),
    ("psHookAdd", "ssssbs", "", Serve::NONE),
    ("psHookList", "s", "aa{ss}", Serve::NONE),
    ("psHookRemove", "sssss", "i", Serve::NONE),
    ("psInvite", "sssssss", "", Serve::NONE),
    ("psItemFormSend", "ssa{sas}ssa{ss}s", "s", Serve::NONE),
    ("psItemRename", "sssss", "", Serve::NONE),
    (
        "psItemRetract",
        "sssbs",
        "",
        Serve::by(&[], h!(pubsub::item_retract)),
    ),
    (
        "psItemSend",
        "ssssss",
        "s",
        Serve::by(&[], h!(pubsub::item_send)),
    ),
    ("psItemsFormGet", "ssssiassss", "(asa{ss})", Serve::NONE),
    (
        "psItemsGet",
        "ssiassss",
        "s",
        Serve::by(&[], h!(pubsub::items_get)),
    ),
    (
        "psItemsRetract",
        "ssasbs",
        "",
        Serve::by(&[], h!(pubsub::items_retract)),
    ),
    (
        "psItemsSend",
        "ssasss",
        "as",
        Serve::by(&[], h!(pubsub::items_send)),
    ),
    (
        "psNodeAffiliationsGet",
        "sss",
        "a{ss}",
        Serve::by(&[], h!(pubsub::node_affiliations_get)),
    ),
    (
        "psNodeAffiliationsSet",
        "ssa{ss}s",
        "",
        Serve::by(&[], h!(pubsub::node_affiliations_set)),
    ),
    (
        "psNodeConfigurationGet",
        "sss",
        "a{ss}",
        Serve::by(&[], h!(pubsub::node_config_get)),
    ),
    (
        "psNodeConfigurationSet",
        "ssa{ss}s",
        "",
        Serve::by(&[], h!(pubsub::node_config_set)),
    ),
    (
        "psNodeCreate",
        "ssa{ss}s",
        "s",
        Serve::by(&[], h!(pubsub::node_create)),
    ),
    (
        "psNodeDelete",
        "sss",
        "",
        Serve::by(&[], h!(pubsub::node_delete)),
    ),
    (
        "psNodePurge",
        "sss",
        "",
        Serve::by(&[], h!(pubsub::node_purge)),
    ),
    (
        "psNodeSubscriptionsGet",
        "sss",
        "a{ss}",
        Serve::by(&[], h!(pubsub::node_subscriptions_get)),
    ),
    (
        "psNodeSubscriptionsSet",
        "ssa{ss}s",
        "",
        Serve::by(&[], h!(pubsub::node_subscriptions_set)),
    ),
    ("psNodeWatchAdd", "sss", "", Serve::NONE),
    ("psNodeWatchRemove", "sss", "", Serve::NONE),
    ("psPublicNodeSubscriptionsGet", "sss", "a{ss}", Serve::NONE),
    ("psPublicSubscriptionsGet", "sss", "s", Serve::NONE),
    ("psSchemaApplicationNSGet", "s", "s", Serve::NONE),
    ("psSchemaDictGet", "sss", "s", Serve::NONE),
    ("psSchemaGet", "sss", "s", Serve::NONE),
    ("psSchemaSet", "ssss", "", Serve::NONE),
    ("psSchemaSubmittedNodeGet", "s", "s", Serve::NONE),
    ("psSchemaTemplateNodeGet", "s", "s", Serve::NONE),
    ("psSchemaUIGet", "sss", "s", Serve::NONE),
    (
        "psSubscribe",
        "ssss",
        "s",
        Serve::by(&[], h!(pubsub::subscribe)),
    ),
    ("psSubscribeToMany", "a(ss)sa{ss}s", "s", Serve::NONE),
    (
        "psSubscriptionsGet",
        "sss",
        "s",
        Serve::by(&[], h!(pubsub::subscriptions_get)),
    ),
    (
        "psUnsubscribe",
        "sss",
        "",
        Serve::by(&[], h!(pubsub::unsubscribe)),
    ),
    ("quizGameAnswer", "ssss", "", Serve::NONE),
    ("quizGameCreate", "sass", "", Serve::NONE),
    ("quizGameLaunch", "asss", "", Serve::NONE),
    ("quizGameReady", "sss", "", Serve::NONE),
    ("radiocolCreate", "sass", "", Serve::NONE),
    ("radiocolLaunch", "asss", "", Serve::NONE),
    ("radiocolSongAdded", "sss", "", Serve::NONE),
    ("referenceSend", "sssss", "", Serve::NONE),
    ("registerSatAccount", "sss", "", Serve::NONE),
    ("searchGetFieldsUI", "ss", "s", Serve::NONE),
    ("searchRequest", "sa{ss}s", "s", Serve::NONE),
    ("siSendFile", "sssss", "s", Serve::NONE),
    ("skipOTR", "s", "", Serve::NONE),
    ("streamOut", "ss", "s", Serve::NONE),
    (
        "syntaxConvert",
        "sssbs",
        "s",
        Serve::by(&[], h!(blog::syntax_convert)),
    ),
    ("syntaxGet", "s", "s", Serve::by(&[], h!(blog::syntax_get))),
    ("tarotGameCreate", "sass", "", Serve::NONE),
    ("tarotGameLaunch", "asss", "", Serve::NONE),
    ("tarotGamePlayCards", "ssa(ss)s", "", Serve::NONE),
    ("tarotGameReady", "sss", "", Serve::NONE),
    ("ticketsImport", "ssa{ss}sss", "s", Serve::NONE),
    ("ticketsImportDesc", "s", "(ss)", Serve::NONE),
    ("ticketsImportList", "", "a(ss)", Serve::NONE),
];

pub const PLUGIN_SIGNALS: &[SignalRow] = &[
    ("FISSharedPathNew", "sss", &[]),
    ("FISSharedPathRemoved", "ss", &[]),
    ("chatStateReceived", "sss", &[]),
    ("messageState", "sss", &[]),
    ("mucRoomJoined", "sa{sa{ss}}ssass", &[]),
    ("mucRoomLeft", "ss", &[]),
    ("mucRoomNewSubject", "sss", &[]),
    ("mucRoomPrepareJoin", "ss", &[]),
    ("mucRoomUserChangedNick", "ssss", &[]),
    ("otrState", "sss", &[]),
    ("psEvent", "ssssss", &[]),
    ("psEventRaw", "sssass", &[]),
    ("quizGameAnswerResult", "ssba{si}s", &[]),
    ("quizGameNew", "sa{ss}s", &[]),
    ("quizGamePlayerBuzzed", "ssbs", &[]),
    ("quizGamePlayerSays", "sssis", &[]),
    ("quizGameQuestion", "sssis", &[]),
    ("quizGameStarted", "ssass", &[]),
    ("quizGameTimerExpired", "ss", &[]),
    ("quizGameTimerRestarted", "sis", &[]),
    ("radiocolNoUpload", "ss", &[]),
    ("radiocolPlay", "sss", &[]),
    ("radiocolPlayers", "ssass", &[]),
    ("radiocolPreload", "ssssssss", &[]),
    ("radiocolSongRejected", "sss", &[]),
    ("radiocolStarted", "ssasais", &[]),
    ("radiocolUploadOk", "ss", &[]),
    ("tarotGameCardsPlayed", "ssa(ss)s", &[]),
    ("tarotGameChooseContrat", "sss", &[]),
    ("tarotGameInvalidCards", "ssa(ss)a(ss)s", &[]),
    ("tarotGameNew", "sa(ss)s", &[]),
    ("tarotGamePlayers", "ssass", &[]),
    ("tarotGameScore", "ssasass", &[]),
    ("tarotGameShowCards", "ssa(ss)a{ss}s", &[]),
    ("tarotGameStarted", "ssass", &[]),
    ("tarotGameYourTurn", "ss", &[]),
    ("xmlLog", "sss", &[]),
];
