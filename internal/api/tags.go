package api

import (
	"context"
)

// TagResourceInput is the validated input of TagResource.
type TagResourceInput struct {
	ResourceArn string
	Tags        map[string]string
}

func (s *Server) tagResource(ctx context.Context, id Identity, in *TagResourceInput) (*struct{}, error) {
	return nil, s.svc.TagResource(ctx, id.caller(), in.ResourceArn, in.Tags)
}

// UntagResourceInput is the validated input of UntagResource.
type UntagResourceInput struct {
	ResourceArn string
	TagKeyList  []string
}

func (s *Server) untagResource(ctx context.Context, id Identity, in *UntagResourceInput) (*struct{}, error) {
	return nil, s.svc.UntagResource(ctx, id.caller(), in.ResourceArn, in.TagKeyList)
}

// ListTagsInput is the validated input of ListTags.
type ListTagsInput struct {
	ResourceArn string
	NextToken   *string
	MaxResults  *int64
}

// ListTagsOutput is its output.
type ListTagsOutput struct {
	Tags      map[string]string
	NextToken *string `json:",omitempty"`
}

func (s *Server) listTags(ctx context.Context, id Identity, in *ListTagsInput) (*ListTagsOutput, error) {
	filter := struct{ Arn string }{in.ResourceArn}
	pg, err := s.pager.page(id.AccountID, "ListTags", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	tags, next, err := s.svc.ListTags(ctx, id.caller(), in.ResourceArn, pg)
	if err != nil {
		return nil, err
	}
	return &ListTagsOutput{Tags: tags, NextToken: s.pager.issue(id.AccountID, "ListTags", filter, next)}, nil
}
