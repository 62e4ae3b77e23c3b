"""Field numbers of the Kubernetes protobuf messages the fake decodes (from the
``generated.proto`` files of k8s.io/api and k8s.io/apimachinery).

Each message maps a field number to ``"jsonName[:type][*][?]"``: the type is
``string`` (default), ``int``, ``bool``, ``bytes``, ``map`` (string to string),
``bmap`` (string to bytes), ``qmap`` (string to Quantity) or a message name;
``*`` marks a repeated field, ``?`` a pointer (its zero value is kept); the
JSON name ``~`` inlines the message into its parent (Go's embedded structs).
"""

from __future__ import annotations

# fmt: off
_META = {
    "ObjectMeta": {
        1: "name", 2: "generateName", 3: "namespace", 4: "selfLink", 5: "uid",
        6: "resourceVersion", 7: "generation:int", 8: "creationTimestamp:Time",
        9: "deletionTimestamp:Time", 10: "deletionGracePeriodSeconds:int?",
        11: "labels:map", 12: "annotations:map", 13: "ownerReferences:OwnerReference*",
        14: "finalizers*", 17: "managedFields:ManagedFieldsEntry*",
    },
    "OwnerReference": {
        1: "kind", 3: "name", 4: "uid", 5: "apiVersion", 6: "controller:bool?",
        7: "blockOwnerDeletion:bool?",
    },
    "ManagedFieldsEntry": {
        1: "manager", 2: "operation", 3: "apiVersion", 4: "time:Time", 6: "fieldsType",
        7: "fieldsV1:FieldsV1", 8: "subresource",
    },
    "LabelSelector": {
        1: "matchLabels:map", 2: "matchExpressions:LabelSelectorRequirement*",
    },
    "LabelSelectorRequirement": {1: "key", 2: "operator", 3: "values*"},
}

_CORE = {
    "Namespace": {1: "metadata:ObjectMeta", 2: "spec:NamespaceSpec", 3: "status:NamespaceStatus"},
    "NamespaceSpec": {1: "finalizers*"},
    "NamespaceStatus": {1: "phase"},
    "Secret": {
        1: "metadata:ObjectMeta", 2: "data:bmap", 3: "type", 4: "stringData:map",
        5: "immutable:bool?",
    },
    "ConfigMap": {
        1: "metadata:ObjectMeta", 2: "data:map", 3: "binaryData:bmap", 4: "immutable:bool?",
    },
    "ServiceAccount": {
        1: "metadata:ObjectMeta", 2: "secrets:ObjectReference*",
        3: "imagePullSecrets:LocalObjectReference*", 4: "automountServiceAccountToken:bool?",
    },
    "ObjectReference": {
        1: "kind", 2: "namespace", 3: "name", 4: "uid", 5: "apiVersion", 6: "resourceVersion",
        7: "fieldPath",
    },
    "LocalObjectReference": {1: "name"},
    "Pod": {1: "metadata:ObjectMeta", 2: "spec:PodSpec", 3: "status:PodStatus"},
    "PodStatus": {1: "phase"},
    "PodTemplateSpec": {1: "metadata:ObjectMeta", 2: "spec:PodSpec"},
    "PodSpec": {
        1: "volumes:Volume*", 2: "containers:Container*", 3: "restartPolicy",
        4: "terminationGracePeriodSeconds:int?", 5: "activeDeadlineSeconds:int?",
        6: "dnsPolicy", 7: "nodeSelector:map", 8: "serviceAccountName", 9: "serviceAccount",
        10: "nodeName", 11: "hostNetwork:bool", 12: "hostPID:bool", 13: "hostIPC:bool",
        15: "imagePullSecrets:LocalObjectReference*", 16: "hostname", 17: "subdomain",
        19: "schedulerName", 20: "initContainers:Container*",
        21: "automountServiceAccountToken:bool?", 22: "tolerations:Toleration*",
        24: "priorityClassName", 25: "priority:int?", 30: "enableServiceLinks:bool?",
    },
    "Toleration": {
        1: "key", 2: "operator", 3: "value", 4: "effect", 5: "tolerationSeconds:int?",
    },
    "Container": {
        1: "name", 2: "image", 3: "command*", 4: "args*", 5: "workingDir",
        6: "ports:ContainerPort*", 7: "env:EnvVar*", 8: "resources:ResourceRequirements",
        9: "volumeMounts:VolumeMount*", 13: "terminationMessagePath", 14: "imagePullPolicy",
        16: "stdin:bool", 17: "stdinOnce:bool", 18: "tty:bool", 19: "envFrom:EnvFromSource*",
        20: "terminationMessagePolicy", 24: "restartPolicy?",
    },
    "ContainerPort": {
        1: "name", 2: "hostPort:int", 3: "containerPort:int", 4: "protocol", 5: "hostIP",
    },
    "EnvVar": {1: "name", 2: "value", 3: "valueFrom:EnvVarSource"},
    "EnvVarSource": {
        1: "fieldRef:ObjectFieldSelector", 3: "configMapKeyRef:ConfigMapKeySelector",
        4: "secretKeyRef:SecretKeySelector",
    },
    "ObjectFieldSelector": {1: "apiVersion", 2: "fieldPath"},
    "ConfigMapKeySelector": {1: "~:LocalObjectReference", 2: "key", 3: "optional:bool?"},
    "SecretKeySelector": {1: "~:LocalObjectReference", 2: "key", 3: "optional:bool?"},
    "EnvFromSource": {
        1: "prefix", 2: "configMapRef:ConfigMapEnvSource", 3: "secretRef:SecretEnvSource",
    },
    "ConfigMapEnvSource": {1: "~:LocalObjectReference", 2: "optional:bool?"},
    "SecretEnvSource": {1: "~:LocalObjectReference", 2: "optional:bool?"},
    "ResourceRequirements": {1: "limits:qmap", 2: "requests:qmap"},
    "VolumeMount": {
        1: "name", 2: "readOnly:bool", 3: "mountPath", 4: "subPath", 5: "mountPropagation?",
        6: "subPathExpr",
    },
    "Volume": {1: "name", 2: "~:VolumeSource"},
    "VolumeSource": {
        1: "hostPath:HostPathVolumeSource", 2: "emptyDir:EmptyDirVolumeSource",
        6: "secret:SecretVolumeSource", 10: "persistentVolumeClaim:PVCVolumeSource",
        19: "configMap:ConfigMapVolumeSource", 26: "projected:ProjectedVolumeSource",
        28: "csi:CSIVolumeSource",
    },
    "HostPathVolumeSource": {1: "path", 2: "type?"},
    "EmptyDirVolumeSource": {1: "medium", 2: "sizeLimit:Quantity"},
    "PVCVolumeSource": {1: "claimName", 2: "readOnly:bool"},
    "KeyToPath": {1: "key", 2: "path", 3: "mode:int?"},
    "SecretVolumeSource": {
        1: "secretName", 2: "items:KeyToPath*", 3: "defaultMode:int?", 4: "optional:bool?",
    },
    "ConfigMapVolumeSource": {
        1: "~:LocalObjectReference", 2: "items:KeyToPath*", 3: "defaultMode:int?",
        4: "optional:bool?",
    },
    "ProjectedVolumeSource": {1: "sources:VolumeProjection*", 2: "defaultMode:int?"},
    "VolumeProjection": {
        1: "secret:SecretProjection", 3: "configMap:ConfigMapProjection",
        4: "serviceAccountToken:ServiceAccountTokenProjection",
    },
    "SecretProjection": {1: "~:LocalObjectReference", 2: "items:KeyToPath*", 4: "optional:bool?"},
    "ConfigMapProjection": {
        1: "~:LocalObjectReference", 2: "items:KeyToPath*", 4: "optional:bool?",
    },
    "ServiceAccountTokenProjection": {1: "audience", 2: "expirationSeconds:int?", 3: "path"},
    "CSIVolumeSource": {
        1: "driver", 2: "readOnly:bool?", 3: "fsType?", 4: "volumeAttributes:map",
        5: "nodePublishSecretRef:LocalObjectReference",
    },
}

_APPS = {
    "Deployment": {
        1: "metadata:ObjectMeta", 2: "spec:DeploymentSpec", 3: "status:DeploymentStatus",
    },
    "DeploymentSpec": {
        1: "replicas:int?", 2: "selector:LabelSelector", 3: "template:PodTemplateSpec",
        4: "strategy:DeploymentStrategy", 5: "minReadySeconds:int",
        6: "revisionHistoryLimit:int?", 7: "paused:bool", 9: "progressDeadlineSeconds:int?",
    },
    "DeploymentStrategy": {1: "type", 2: "rollingUpdate:RollingUpdateDeployment"},
    "RollingUpdateDeployment": {1: "maxUnavailable:IntOrString", 2: "maxSurge:IntOrString"},
    "DeploymentStatus": {
        1: "observedGeneration:int", 2: "replicas:int", 3: "updatedReplicas:int",
        4: "unavailableReplicas:int", 5: "availableReplicas:int", 7: "readyReplicas:int",
        8: "collisionCount:int?", 9: "terminatingReplicas:int?",
    },
}

_RBAC = {
    "PolicyRule": {
        1: "verbs*", 2: "apiGroups*", 3: "resources*", 4: "resourceNames*",
        5: "nonResourceURLs*",
    },
    "Role": {1: "metadata:ObjectMeta", 2: "rules:PolicyRule*"},
    "ClusterRole": {
        1: "metadata:ObjectMeta", 2: "rules:PolicyRule*", 3: "aggregationRule:AggregationRule",
    },
    "AggregationRule": {1: "clusterRoleSelectors:LabelSelector*"},
    "Subject": {1: "kind", 2: "apiGroup", 3: "name", 4: "namespace"},
    "RoleRef": {1: "apiGroup", 2: "kind", 3: "name"},
    "RoleBinding": {1: "metadata:ObjectMeta", 2: "subjects:Subject*", 3: "roleRef:RoleRef"},
    "ClusterRoleBinding": {
        1: "metadata:ObjectMeta", 2: "subjects:Subject*", 3: "roleRef:RoleRef",
    },
}

_AUTH = {
    "TokenRequest": {1: "metadata:ObjectMeta", 2: "spec:TokenRequestSpec", 3: "status:TRStatus"},
    "TokenRequestSpec": {
        1: "audiences*", 3: "boundObjectRef:BoundObjectReference", 4: "expirationSeconds:int?",
    },
    "TRStatus": {1: "token", 2: "expirationTimestamp:Time"},
    "BoundObjectReference": {1: "kind", 2: "apiVersion", 3: "name", 4: "uid"},
    "TokenReview": {
        1: "metadata:ObjectMeta", 2: "spec:TokenReviewSpec", 3: "status:TokenReviewStatus",
    },
    "TokenReviewSpec": {1: "token", 2: "audiences*"},
    "SelfSubjectReview": {1: "metadata:ObjectMeta", 2: "status:SelfSubjectReviewStatus"},
    "SelfSubjectReviewStatus": {1: "userInfo:UserInfo"},
    "UserInfo": {1: "username", 2: "uid", 3: "groups*"},
    "SelfSubjectAccessReview": {
        1: "metadata:ObjectMeta", 2: "spec:SelfSARSpec", 3: "status:SARStatus",
    },
    "SelfSARSpec": {
        1: "resourceAttributes:ResourceAttributes",
        2: "nonResourceAttributes:NonResourceAttributes",
    },
    "SubjectAccessReview": {1: "metadata:ObjectMeta", 2: "spec:SARSpec", 3: "status:SARStatus"},
    "SARSpec": {
        1: "resourceAttributes:ResourceAttributes",
        2: "nonResourceAttributes:NonResourceAttributes", 3: "user", 4: "groups*", 6: "uid",
    },
    "ResourceAttributes": {
        1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
        7: "name",
    },
    "NonResourceAttributes": {1: "path", 2: "verb"},
    "SelfSubjectRulesReview": {
        1: "metadata:ObjectMeta", 2: "spec:SelfSubjectRulesReviewSpec", 3: "status:RulesStatus",
    },
    "SelfSubjectRulesReviewSpec": {1: "namespace"},
    "RulesStatus": {
        1: "resourceRules:PolicyRule*", 2: "nonResourceRules:PolicyRule*", 3: "incomplete:bool",
        4: "evaluationError",
    },
    "SARStatus": {1: "allowed:bool", 2: "reason", 3: "evaluationError", 4: "denied:bool"},
    "TokenReviewStatus": {1: "authenticated:bool", 3: "error", 4: "audiences*"},
}

# fmt: on

#: (apiVersion, kind) -> the message of a top-level object
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "TokenReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
}


def _parse(spec: str) -> tuple[str, str, bool, bool]:
    pointer = spec.endswith("?")
    spec = spec.rstrip("?")
    repeated = spec.endswith("*")
    spec = spec.rstrip("*")
    name, _, kind = spec.partition(":")
    return name, kind or "string", repeated, pointer


#: message -> field number -> (json name, type, repeated?, pointer?)
MESSAGES: dict[str, dict[int, tuple[str, str, bool, bool]]] = {
    message: {number: _parse(spec) for number, spec in fields.items()}
    for table in (_META, _CORE, _APPS, _RBAC, _AUTH)
    for message, fields in table.items()
}
